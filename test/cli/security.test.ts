/**
 * Security through the real CLI:
 * - credentials and secret values never appear in what `pipe` prints (run, backfill, validate,
 *   validate --ping, status, status --json; text and JSON logs, --verbose included), in the
 *   reasons recorded for failed artifacts, or anywhere in the state file's bytes;
 * - the jsonl sink never writes outside its directory, whatever the rows' `_time`, the file names
 *   or the pipeline name say;
 * - YAML with custom tags or an alias bomb is refused with exit 2, quickly, naming file and line.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idCounts, readSink, runCli, type CliResult } from '../helpers/cli.js';
import { AWS_TEST_ENV, cloudTrailBody, cloudTrailKey, S3Proxy, startS3, strayStderrLines, type S3Server } from '../helpers/s3.js';
import { tempDir } from '../helpers/tmp.js';

const SECRETS = {
  accessKeyId: 'AKIAPIPETESTKEYID0001',
  secretKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYpipeSECRETkey',
  sessionToken: 'IQoJb3JpZ2luX2VjEPipeSessionTokenSECRET0123456789',
  urlPassword: 's3cr3t-PW-in-url',
  apiToken: 'tok-pipe-Secr3t-VALUE-42',
};

const SECRET_ENV: Record<string, string> = {
  ...AWS_TEST_ENV,
  AWS_ACCESS_KEY_ID: SECRETS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: SECRETS.secretKey,
  AWS_SESSION_TOKEN: SECRETS.sessionToken,
  PIPE_API_TOKEN: SECRETS.apiToken,
};

/** Every secret that occurs in `text`, by name: the assertion is that this is empty. */
function leaks(text: string | Buffer): string[] {
  const s = typeof text === 'string' ? text : text.toString('latin1');
  return Object.entries(SECRETS).filter(([, v]) => s.includes(v)).map(([k]) => k);
}

/** Every file under `dir`, recursively. */
function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    out.push(p);
    if (statSync(p).isDirectory()) out.push(...walk(p));
  }
  return out;
}

describe('secrets', () => {
  let s3: S3Server;
  let proxy: S3Proxy;
  /** Answers everything as S3 does a request whose signature it rejects: echoing the canonical request. */
  let leaky: Server;
  let leakyUrl = '';

  beforeAll(async () => {
    s3 = await startS3();
    proxy = await S3Proxy.start(s3.url);
    leaky = createServer((req, res) => {
      req.resume();
      const auth = String(req.headers.authorization ?? '');
      const headers = Object.entries(req.headers).map(([k, v]) => `${k}:${String(v)}`).sort().join('\n');
      const body = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code>'
        + '<Message>The request signature we calculated does not match the signature you provided. Check your key and signing method.</Message>'
        + `<AWSAccessKeyId>${/Credential=([^/]+)/.exec(auth)?.[1] ?? ''}</AWSAccessKeyId>`
        + `<SignatureProvided>${/Signature=(\w+)/.exec(auth)?.[1] ?? ''}</SignatureProvided>`
        + `<CanonicalRequest>${req.method}\n${req.url}\n${headers}</CanonicalRequest><RequestId>leaky</RequestId></Error>`;
      res.writeHead(403, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    await new Promise<void>((r) => leaky.listen(0, '127.0.0.1', r));
    leakyUrl = `http://127.0.0.1:${(leaky.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await proxy?.close();
    await s3?.close();
    await new Promise((r) => leaky?.close(r));
  });

  /** `http://user:<password>@127.0.0.1:<port>` for a server URL. */
  const withPassword = (url: string): string => url.replace('http://', `http://pipe-user:${SECRETS.urlPassword}@`);

  function pipeline(dir: string, name: string, source: string, extra = ''): string {
    const file = join(dir, `${name}.yml`);
    writeFileSync(file, `name: ${name}
state: ${join(dir, 'state.db')}
source: { type: s3, bucket: ${name}, endpoint: "\${S3_ENDPOINT}", forcePathStyle: true, settle: 0s${source} }
mappers: [cloudtrail]
sink: { type: jsonl, dir: ${join(dir, 'out')}, flushInterval: 100ms${extra} }
`);
    return file;
  }

  it('never appear in output, failure reasons, pipe status or the state file', async () => {
    const dir = tempDir();
    const outputs: Array<{ what: string; r: CliResult }> = [];
    const pipe = async (what: string, args: string[], endpoint: string, expectCode?: number): Promise<CliResult> => {
      const r = await runCli(args, { env: { ...SECRET_ENV, S3_ENDPOINT: endpoint } });
      outputs.push({ what, r });
      if (expectCode !== undefined) expect(r.code, `${what}\n${r.stderr}`).toBe(expectCode);
      // (validate prints `file:line: …` lines; `validate --ping` also lets the AWS SDK's Node-version notice through.)
      if (args.includes('json')) {
        for (const line of r.stderr.split('\n').filter(Boolean)) expect(() => JSON.parse(line), line).not.toThrow();
      } else if (args[0] === 'run' || args[0] === 'backfill') expect(strayStderrLines(r.stderr), what).toEqual([]);
      return r;
    };

    await s3.createBucket('sec');
    const seeded: string[] = [];
    for (let i = 0; i < 3; i++) {
      const d = cloudTrailBody(i, 5);
      await s3.put('sec', cloudTrailKey('111111111111', 'us-east-1', 1, i), d.body);
      seeded.push(...d.ids);
    }
    const file = pipeline(dir, 'sec', '');
    const good = withPassword(proxy.url);

    // Working runs, with every log line there is.
    await pipe('validate', ['validate', file], good, 0);
    const ping = await pipe('validate --ping', ['validate', '--ping', file], good, 0);
    expect(ping.stdout).toMatch(/source s3: ok/);
    await pipe('run --verbose', ['run', file, '--no-progress', '--verbose'], good, 0);
    expect(readSink(join(dir, 'out'))).toHaveLength(seeded.length);

    // AccessDenied on a new object's GET: a failed artifact whose reason is recorded and shown.
    await s3.put('sec', cloudTrailKey('111111111111', 'us-east-1', 2, 9), cloudTrailBody(9, 5).body);
    proxy.fault = (r) => (r.op === 'get' ? { status: 403, code: 'AccessDenied' } : undefined);
    const denied = await pipe('run, GET denied', ['run', file, '--no-progress', '--verbose', '--log-format', 'json'], good, 1);
    expect(denied.stderr).toMatch(/AccessDenied/);
    // AccessDenied on the listing, through backfill.
    proxy.fault = (r) => (r.op === 'list' ? { status: 403, code: 'AccessDenied' } : undefined);
    const listDenied = await pipe('backfill, LIST denied', ['backfill', file, '--prefix', 'AWSLogs/', '--no-progress', '--verbose'], good);
    expect(listDenied.code).not.toBe(0);
    expect(listDenied.stderr).toMatch(/AccessDenied/);
    await pipe('validate --ping, LIST denied', ['validate', '--ping', file], good, 2);
    proxy.reset();

    // S3 rejecting the signature echoes the canonical request, session token header included.
    const leakyFile = pipeline(dir, 'leaky', '');
    const sig = await pipe('run, SignatureDoesNotMatch', ['run', leakyFile, '--no-progress', '--verbose'], withPassword(leakyUrl));
    expect(sig.code).not.toBe(0);
    expect(sig.stderr).toMatch(/SignatureDoesNotMatch/);
    expect(sig.stderr).toMatch(/CanonicalRequest/);
    await pipe('run json, SignatureDoesNotMatch', ['run', leakyFile, '--no-progress', '--verbose', '--log-format', 'json'], withPassword(leakyUrl));
    await pipe('validate --ping, SignatureDoesNotMatch', ['validate', '--ping', leakyFile], withPassword(leakyUrl), 2);

    // Endpoints that do not work: an invalid port (the SDK's error carries the URL), nothing listening.
    const bad = await pipe('run, invalid endpoint URL', ['run', file, '--no-progress', '--verbose'], `http://pipe-user:${SECRETS.urlPassword}@127.0.0.1:99999`);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/Invalid URL/);
    await pipe('run json, invalid endpoint URL', ['run', file, '--no-progress', '--verbose', '--log-format', 'json'], `http://pipe-user:${SECRETS.urlPassword}@127.0.0.1:99999`);
    await pipe('validate --ping, nothing listening', ['validate', '--ping', file], `http://pipe-user:${SECRETS.urlPassword}@127.0.0.1:1`, 2);

    // Configuration errors that quote values: a URL with a password, a secret-named variable.
    const ftp = await pipe('validate, bad endpoint', ['validate', file], `ftp://pipe-user:${SECRETS.urlPassword}@127.0.0.1`, 2);
    expect(ftp.stderr).toMatch(/sec\.yml:3: source\.endpoint: expected a URL .*got 'ftp:\/\/pipe-user:\*\*\*@127\.0\.0\.1'/);
    await pipe('run, bad endpoint', ['run', file, '--no-progress'], `ftp://pipe-user:${SECRETS.urlPassword}@127.0.0.1`, 2);
    const tokenFile = pipeline(dir, 'token', ', concurrency: "${PIPE_API_TOKEN}"');
    const token = await pipe('validate, secret variable as a number', ['validate', tokenFile], good, 2);
    expect(token.stderr).toMatch(/source\.concurrency: expected an integer, got '\$\{PIPE_API_TOKEN\}'/);
    await pipe('run, secret variable as a number', ['run', tokenFile, '--no-progress'], good, 2);

    // What pipe status reports, after all of that.
    const status = await pipe('status', ['status', file], good, 0);
    expect(status.stdout).toMatch(/failed:\n {2}s3:\/\/sec\/.*AccessDenied/);
    await pipe('status --json', ['status', '--json', file], good, 0);
    await pipe('status leaky', ['status', leakyFile], good, 0);

    for (const { what, r } of outputs) {
      expect({ what, leaks: leaks(r.stdout + r.stderr) }).toEqual({ what, leaks: [] });
    }
    // The state file and everything else pipe wrote (WAL, sink, owner records), as bytes.
    for (const f of walk(dir).filter((p) => statSync(p).isFile() && !p.endsWith('.yml'))) {
      expect({ file: relative(dir, f), leaks: leaks(readFileSync(f)) }).toEqual({ file: relative(dir, f), leaks: [] });
    }
    expect(existsSync(join(dir, 'state.db'))).toBe(true);
  });
});

describe('the sink stays inside its directory', () => {
  const sentinel = `escape-${process.pid}-${Date.now()}`;
  const hostileTimes = [
    `../../../../../../../../${sentinel}`,
    `../../${sentinel}`,
    `..T../../../${sentinel}`,
    `../../../..T..`,
    `2024-03-01T../../../${sentinel}`,
    `/${sentinel}/x/y/z/w`,
    `..\\..\\${sentinel}`,
    `2024\u000003-01T00:00:00Z`,
    'x'.repeat(10_000),
    `dt=../../${sentinel}`,
    '2024-03-01T12:00:00.000Z',
  ];

  it('whatever _time, file names and partition mode say', async () => {
    const root = tempDir();
    const work = join(root, 'a', 'b', 'work');
    const input = join(work, 'in');
    mkdirSync(input, { recursive: true });
    const names = ['hostile.jsonl', 'a..b.jsonl', '..jsonl', 'dt=..jsonl', 'new\nline.jsonl', `${'n'.repeat(240)}.jsonl`, '-rf .jsonl'];
    let rows = 0;
    for (const [n, name] of names.entries()) {
      const lines = hostileTimes.map((t, i) => JSON.stringify({ n: `${n}-${i}`, _time: t, _id: `../../${sentinel}-${n}-${i}` }));
      writeFileSync(join(input, name), lines.join('\n') + '\n');
      rows += lines.length;
    }
    // In the main thread and in worker threads (which serialize rows and name their partitions).
    for (const [partition, threads] of [['day', 0], ['hour', 0], ['none', 0], ['day', 2], ['hour', 2]] as const) {
      const name = `p-${partition}-t${threads}`;
      const out = join(work, `out-${name}`);
      const file = join(work, `${name}.yml`);
      writeFileSync(file, `name: ${name}\nstate: ${join(work, 'state.db')}\nsource: { type: files, path: ${input} }\nloader: [jsonl]\nsink: { type: jsonl, dir: ${out}, partition: ${partition}, maxRows: 7 }\n`);
      const r = await runCli(['run', file, '--no-progress', '--threads', String(threads)], { cwd: work });
      expect(r.code, r.stderr).toBe(0);
      const delivered = readSink(out);
      const counts = idCounts(delivered);
      expect(counts.size).toBe(rows);
      expect([...counts.values()].every((c) => c === 1)).toBe(true);
      if (partition !== 'none') {
        const dirs = readdirSync(out).filter((d) => d !== '.pipe-tmp').sort();
        expect(dirs).toEqual(['dt=2024-03-01', 'dt=unknown']);
      }
    }
    // Nothing anywhere but the input, the three sinks, the state file and the pipeline files.
    const allowed = [/^in(\/|$)/, /^out-p-(day|hour|none)-t\d(\/|$)/, /^state\.db(-wal|-shm)?$/, /^p-(day|hour|none)-t\d\.yml$/];
    const stray = walk(root).map((p) => relative(work, p).split(sep).join('/'))
      .filter((p) => p !== '' && !p.startsWith('..') && !allowed.some((re) => re.test(p)));
    expect(stray).toEqual([]);
    expect(walk(root).filter((p) => !p.startsWith(work)).map((p) => relative(root, p))).toEqual(['a', join('a', 'b')]);
    for (const base of ['/', tmpdir(), root, join(root, 'a')]) {
      expect(readdirSync(base).filter((n) => n.includes(sentinel))).toEqual([]);
    }
  });

  it.each([
    ['..', /name: expected a name other than '\.' and '\.\.'/],
    ['.', /name: expected a name other than '\.' and '\.\.'/],
    ['"../x"', /name: expected letters, digits/],
    ['a/b', /name: expected letters, digits/],
    ['"a\\0b"', /name: expected letters, digits/],
    ['x'.repeat(200), /name: expected at most 128 characters/],
  ])('a pipeline named %s is a configuration error, and nothing is written', async (name, message) => {
    const dir = tempDir();
    const work = join(dir, 'w');
    mkdirSync(join(work, 'in'), { recursive: true });
    writeFileSync(join(work, 'in', 'x.jsonl'), '{"a":1}\n');
    const file = join(work, 'p.yml');
    writeFileSync(file, `name: ${name}\nstate: ${join(work, 'state.db')}\nsource: { type: files, path: ${join(work, 'in')} }\nloader: [jsonl]\nsink: { type: jsonl, dir: ${join(work, 'out')} }\n`);
    for (const args of [['validate', file], ['run', file, '--no-progress']]) {
      const r = await runCli(args, { cwd: work });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${file}:1: `);
      expect(r.stderr).toMatch(message);
    }
    expect(readdirSync(work).sort()).toEqual(['in', 'p.yml']);
    expect(readdirSync(dir)).toEqual(['w']);
  });
});

describe('hostile YAML through the CLI', () => {
  it('an alias bomb is refused with exit 2 in well under the time it would take to expand', async () => {
    const dir = tempDir();
    const lines = ['name: x', 'l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i <= 12; i++) lines.push(`l${i}: &l${i} [${Array(10).fill(`*l${i - 1}`).join(',')}]`);
    const file = join(dir, 'bomb.yml');
    writeFileSync(file, `${lines.join('\n')}\nsource: { type: files, path: ${dir} }\nsink: { type: jsonl, dir: ${join(dir, 'out')} }\n`);
    for (const args of [['validate', file], ['run', file, '--no-progress'], ['status', file]]) {
      const started = Date.now();
      const r = await runCli(args);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`${file}:\\d+: l\\d+(\\[\\d+\\])*: aliases expand to more than 10000 values by here \\(\\*l\\d+; an alias bomb\\?\\)`));
      expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    expect(existsSync(join(dir, 'out'))).toBe(false);
  });

  it('custom tags are refused with exit 2 naming file, line and path, and none is executed', async () => {
    const dir = tempDir();
    const marker = join(dir, 'executed');
    const file = join(dir, 'tags.yml');
    writeFileSync(file, [
      'name: tags',
      `source: { type: files, path: !!js/function "function () { require('fs').writeFileSync('${marker}', 'x') }" }`,
      'mappers:',
      '  - !foo cloudtrail',
      `sink: { type: jsonl, dir: !!binary aGVsbG8= }`,
      '',
    ].join('\n'));
    for (const args of [['validate', file], ['run', file, '--no-progress']]) {
      const r = await runCli(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${file}:2: source.path: YAML tag !!js/function is not allowed`);
      expect(r.stderr).toContain(`${file}:4: mappers[0]: YAML tag !foo is not allowed`);
      expect(r.stderr).toContain(`${file}:5: sink.dir: YAML tag !!binary is not allowed`);
    }
    expect(existsSync(marker)).toBe(false);
    expect(readdirSync(dir)).toEqual(['tags.yml']);
  });
});
