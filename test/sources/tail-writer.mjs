// A log writer for the tail tests: `node tail-writer.mjs <file> <lines per second> [prefix]`.
// Appends `<prefix> <n> <epoch ms>` lines, one write(2) each, through an O_APPEND descriptor (as
// loggers do, so a copytruncate leaves no hole). SIGHUP reopens the file (a create-mode rotation's
// postrotate); SIGTERM prints {"lines": n} and exits.
import { closeSync, openSync, writeSync } from 'node:fs';

const [file, rateArg, prefix = 'line'] = process.argv.slice(2);
const rate = Number(rateArg);
let fd = openSync(file, 'a');
let n = 0;
let reopened = 0;
const start = performance.now();

process.on('SIGHUP', () => {
  closeSync(fd);
  fd = openSync(file, 'a');
  reopened++;
});
process.on('SIGTERM', () => {
  process.stdout.write(JSON.stringify({ lines: n, reopened }) + '\n', () => process.exit(0));
});

function tick() {
  const target = Math.floor(((performance.now() - start) * rate) / 1000);
  while (n < target) {
    writeSync(fd, `${prefix} ${n} ${(performance.timeOrigin + performance.now()).toFixed(3)}\n`);
    n++;
  }
  setTimeout(tick, 1);
}
process.stdout.write('ready\n');
tick();
