/** Built-in components: one plain map from type name to module. No import-time side effects. */
import type { ComponentKind, ComponentModule } from './spec.js';
import * as files from './sources/files.js';
import * as s3 from './sources/s3.js';
import * as cloudwatch from './sources/cloudwatch.js';
import * as tail from './sources/tail.js';
import * as gzip from './loaders/gzip.js';
import * as lines from './loaders/lines.js';
import * as json from './loaders/json.js';
import * as jsonl from './loaders/jsonl.js';
import * as cloudtrail from './mappers/cloudtrail.js';
import * as vpcflow from './mappers/vpcflow.js';
import * as filter from './mappers/filter.js';
import * as set from './mappers/set.js';
import * as rename from './mappers/rename.js';
import * as drop from './mappers/drop.js';
import * as dedupe from './mappers/dedupe.js';
import * as jsonlSink from './sinks/jsonl.js';
import * as s3Sink from './sinks/s3.js';
import * as stdoutSink from './sinks/stdout.js';

export const builtins: Record<ComponentKind, Record<string, ComponentModule>> = {
  source: { files, s3, cloudwatch, tail },
  loader: { gzip, lines, json, jsonl },
  mapper: { cloudtrail, vpcflow, filter, set, rename, drop, dedupe },
  sink: { jsonl: jsonlSink, s3: s3Sink, stdout: stdoutSink },
};
