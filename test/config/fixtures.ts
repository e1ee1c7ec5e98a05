/** Small inline component specs for the config tests: an s3-like source, jsonl-like sink, filter-like mapper. */
import type { ComponentModule, ComponentSpec } from '../../src/spec.js';
import { makeResolver, type BuiltinComponents } from '../../src/config/resolve.js';

function component(spec: ComponentSpec): ComponentModule {
  return { spec, create: () => ({}) };
}

export const s3Source = component({
  kind: 'source',
  type: 's3',
  summary: 'S3-like test source',
  options: {
    bucket: { type: 'string', description: 'bucket', required: true, example: 'my-trail' },
    prefix: { type: 'string', description: 'key prefix', default: '' },
    region: { type: 'string', description: 'region' },
    endpoint: { type: 'string', description: 'endpoint' },
    forcePathStyle: { type: 'boolean', description: 'path style', default: false },
    layout: { type: 'enum', description: 'layout', values: ['cloudtrail', 'vpcflow', 'none'], default: 'none' },
    include: { type: 'strings', description: 'globs', default: ['**'] },
    exclude: { type: 'strings', description: 'globs' },
    concurrency: { type: 'integer', description: 'in flight', default: 8, min: 1, max: 256 },
    ratio: { type: 'number', description: 'a number', min: 0, max: 1 },
    poll: { type: 'duration', description: 'poll interval', min: 1000 },
    logGroup: { type: 'string-or-strings', description: 'name or names' },
    tags: { type: 'object', description: 'extra fields' },
  },
});

export const jsonlSink = component({
  kind: 'sink',
  type: 'jsonl',
  summary: 'JSONL-like test sink',
  options: {
    dir: { type: 'string', description: 'directory', required: true },
    maxRows: { type: 'integer', description: 'rows per chunk', default: 100000, min: 1 },
    maxBytes: { type: 'size', description: 'bytes per chunk', default: '64MiB' },
    flushInterval: { type: 'duration', description: 'flush', default: '1s' },
    gzip: { type: 'boolean', description: 'gzip', default: false },
    partition: { type: 'enum', description: 'partition', values: ['none', 'day', 'hour'], default: 'none' },
  },
});

export const stdoutSink = component({ kind: 'sink', type: 'stdout', summary: 'stdout', options: {} });

export const filterMapper = component({
  kind: 'mapper',
  type: 'filter',
  summary: 'filter-like test mapper',
  options: { where: { type: 'string', description: 'expression', required: true } },
});

export const cloudtrailMapper = component({ kind: 'mapper', type: 'cloudtrail', summary: 'ct', options: {} });

export const gzipLoader = component({ kind: 'loader', type: 'gzip', summary: 'gzip', options: {} });
export const jsonLoader = component({
  kind: 'loader',
  type: 'json',
  summary: 'json',
  options: { path: { type: 'string', description: 'array path' } },
});

export const builtins: BuiltinComponents = {
  source: { s3: s3Source },
  loader: { gzip: gzipLoader, json: jsonLoader },
  mapper: { filter: filterMapper, cloudtrail: cloudtrailMapper },
  sink: { jsonl: jsonlSink, stdout: stdoutSink },
};

export const resolve = makeResolver(builtins);
