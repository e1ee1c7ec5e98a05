/**
 * A worker thread that decodes artifacts: it builds the pipeline's loaders and mappers from the
 * configuration the main thread validated, receives raw bytes from the main thread, and posts
 * back batches whose rows are already JSON lines. Decompression, parsing, mapping and JSON.stringify all happen here, on
 * every core; the main thread keeps the I/O, the state and the commits.
 */
import { Readable } from 'node:stream';
import { parentPort } from 'node:worker_threads';
import { PipeError, toPipeError } from '../errors.js';
import { BufferSource } from '../sinks/serialize.js';
import type { Batch, Logger } from '../types.js';
import { decodeArtifact, type CollectPlan } from './collect.js';
import { workerPlan } from './worker-plan.js';
import { toWire, type FromWorker, type ToWorker, type WorkerInit } from './wire.js';

const port = parentPort!;
const post = (m: FromWorker): void => port.postMessage(m);

const log: Logger = {
  debug: (message, fields) => post({ t: 'log', level: 'debug', message, ...(fields ? { fields } : {}) }),
  info: (message, fields) => post({ t: 'log', level: 'info', message, ...(fields ? { fields } : {}) }),
  warn: (message, fields) => post({ t: 'log', level: 'warn', message, ...(fields ? { fields } : {}) }),
  error: (message, fields) => post({ t: 'log', level: 'error', message, ...(fields ? { fields } : {}) }),
};

interface Job {
  input: Readable;
  abort: AbortController;
  credits: number;
  wake: (() => void) | undefined;
}

const jobs = new Map<number, Job>();
const buffers = new BufferSource();
/** Artifacts are decoded one at a time, in the order they came: this settles when the last one has. */
let turn: Promise<void> = Promise.resolve();

async function start(plan: CollectPlan, init: WorkerInit, m: Extract<ToWorker, { t: 'start' }>): Promise<void> {
  const job: Job = {
    // Up to 1 MiB is asked for ahead of the decoder, so the next bytes are on their way while it works.
    input: new Readable({ highWaterMark: 1024 * 1024, read: () => post({ t: 'pull', id: m.id }) }),
    abort: new AbortController(),
    credits: 1,
    wake: undefined,
  };
  jobs.set(m.id, job);
  // Its bytes start coming now; it is decoded once the artifacts before it are.
  job.input.read(0);
  const previous = turn;
  let done!: () => void;
  turn = new Promise<void>((resolve) => (done = resolve));
  const push = async (b: Batch): Promise<void> => {
    while (job.credits === 0) await new Promise<void>((r) => (job.wake = r));
    job.credits--;
    // Rows were written as they were mapped (plan.rowWriter), into ArrayBuffers of their own (never
    // Buffer's shared pool): they are moved to the main thread, not copied.
    const { artifact: _a, rows: _r, failed, ...rest } = b;
    const serialized = rest.serialized ?? [];
    const transfer = serialized.map((p) => (p.text as Uint8Array).buffer as ArrayBuffer);
    port.postMessage({ t: 'batch', id: m.id, batch: { ...rest, serialized, ...(failed ? { failed: toWire(failed) } : {}) } } satisfies FromWorker, transfer);
  };
  try {
    await previous;
    await decodeArtifact(m.ref, job.input, m.resumeFrom, plan, push, job.abort.signal, m.at);
  } finally {
    done();
    jobs.delete(m.id);
    post({ t: 'finished', id: m.id });
  }
}

async function main(init: WorkerInit): Promise<void> {
  const plan = await workerPlan(init, log, buffers);
  port.on('message', (m: ToWorker) => {
    if (m.t === 'init') return;
    if (m.t === 'recycle') {
      buffers.give(m.buffer);
      return;
    }
    const job = jobs.get(m.id);
    switch (m.t) {
      case 'start':
        void start(plan, init, m);
        break;
      case 'data':
        job?.input.push(Buffer.from(m.chunk.buffer, m.chunk.byteOffset, m.chunk.byteLength));
        break;
      case 'end':
        job?.input.push(null);
        break;
      case 'error':
        job?.input.destroy(new PipeError(m.error.code, m.error.message, m.error.position ? { position: m.error.position } : {}));
        break;
      case 'abort':
        job?.abort.abort();
        break;
      case 'credit':
        if (job) {
          job.credits++;
          const w = job.wake;
          job.wake = undefined;
          w?.();
        }
        break;
    }
  });
  post({ t: 'ready' });
}

port.once('message', (m: ToWorker) => {
  if (m.t !== 'init') {
    post({ t: 'init-failed', error: { code: 'PIPE_INTERNAL', message: `a worker thread got ${m.t} before init` } });
    return;
  }
  main(m.init).catch((err: unknown) => post({ t: 'init-failed', error: toWire(toPipeError(err, 'PIPE_INTERNAL')) }));
});
