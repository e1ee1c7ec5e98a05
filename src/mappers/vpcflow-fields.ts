/**
 * The fields of VPC and Transit Gateway flow log records, as AWS lists them ("Available fields" in
 * the VPC user guide, "Transit Gateway Flow Log records" in the TGW guide). `int` marks the fields
 * AWS documents with an integer Parquet type; they become numbers, everything else stays a string
 * (account ids keep their leading zeros). `encryption-status` is documented as a set of codes, not a
 * count, so it stays a string like the other identifiers.
 */
import { PipeError } from '../errors.js';

export interface VpcFieldInfo {
  /** Output key: the AWS name in snake_case. */
  key: string;
  int: boolean;
}

const INT_FIELDS = [
  'version',
  'srcport',
  'dstport',
  'protocol',
  'packets',
  'bytes',
  'start',
  'end',
  'tcp-flags',
  'traffic-path',
  'packets-lost-no-route',
  'packets-lost-blackhole',
  'packets-lost-mtu-exceeded',
  'packets-lost-ttl-expired',
];

const STRING_FIELDS = [
  // v2
  'account-id', 'interface-id', 'srcaddr', 'dstaddr', 'action', 'log-status',
  // v3
  'vpc-id', 'subnet-id', 'instance-id', 'type', 'pkt-srcaddr', 'pkt-dstaddr',
  // v4
  'region', 'az-id', 'sublocation-type', 'sublocation-id',
  // v5
  'pkt-src-aws-service', 'pkt-dst-aws-service', 'flow-direction',
  // v7 (ECS)
  'ecs-cluster-arn', 'ecs-cluster-name', 'ecs-container-instance-arn', 'ecs-container-instance-id',
  'ecs-container-id', 'ecs-second-container-id', 'ecs-service-name', 'ecs-task-definition-arn',
  'ecs-task-arn', 'ecs-task-id',
  // v8 and later
  'reject-reason', 'resource-id', 'encryption-status',
  // Transit Gateway (v6)
  'resource-type', 'tgw-id', 'tgw-attachment-id', 'tgw-src-vpc-account-id', 'tgw-dst-vpc-account-id',
  'tgw-src-vpc-id', 'tgw-dst-vpc-id', 'tgw-src-subnet-id', 'tgw-dst-subnet-id', 'tgw-src-eni',
  'tgw-dst-eni', 'tgw-src-az-id', 'tgw-dst-az-id', 'tgw-pair-attachment-id',
];

export const VPC_FIELDS: ReadonlyMap<string, VpcFieldInfo> = new Map<string, VpcFieldInfo>([
  ...INT_FIELDS.map((n): [string, VpcFieldInfo] => [n, { key: snake(n), int: true }]),
  ...STRING_FIELDS.map((n): [string, VpcFieldInfo] => [n, { key: snake(n), int: false }]),
]);

/** The default format: every version 2 field in the order of AWS's table. */
export const DEFAULT_VPC_FORMAT: readonly string[] = [
  'version', 'account-id', 'interface-id', 'srcaddr', 'dstaddr', 'srcport', 'dstport', 'protocol',
  'packets', 'bytes', 'start', 'end', 'action', 'log-status',
];

/** What a field name looks like; a name AWS adds later is accepted and kept as a string. */
const NAME = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;

const PLAIN_KEY = /^[a-z][a-z0-9_]*$/;

function snake(name: string): string {
  return name.replaceAll('-', '_');
}

/** A format compiled once: parallel arrays, so mapping a line is a tight loop. */
export interface VpcFormat {
  readonly names: readonly string[];
  readonly keys: readonly string[];
  readonly ints: readonly boolean[];
  /** Indexes of `start`, `end` and `log-status`, or -1. */
  readonly start: number;
  readonly end: number;
  readonly status: number;
  /**
   * What comes before each field's value in the row's JSON: `{"version":`, `,"account_id":` …
   * Only used when `plainKeys`.
   */
  readonly prefixes: readonly string[];
  /**
   * Every key starts with a letter and none repeats (as NAME and the duplicate checks ensure for any
   * format that reaches here): JSON.stringify of a row keeps the keys in this order, none needs
   * escaping, and none is `_time`, `_id` or `_source`.
   */
  readonly plainKeys: boolean;
}

export function compileVpcFormat(names: readonly string[]): VpcFormat {
  const keys: string[] = [];
  const ints: boolean[] = [];
  for (const n of names) {
    const info = VPC_FIELDS.get(n);
    keys.push(info ? info.key : snake(n));
    ints.push(info ? info.int : false);
  }
  return {
    names: [...names],
    keys,
    ints,
    prefixes: keys.map((k, i) => `${i === 0 ? '{' : ','}${JSON.stringify(k)}:`),
    plainKeys: new Set(keys).size === keys.length && keys.every((k) => PLAIN_KEY.test(k)),
    start: names.indexOf('start'),
    end: names.indexOf('end'),
    status: names.indexOf('log-status'),
  };
}

/**
 * Parses a format as AWS writes it (`${version} ${account-id} …`) or as a plain list
 * (`version account-id …`) into field names. Throws PIPE_CONFIG_INVALID naming the column.
 */
export function parseVpcFormat(text: string): string[] {
  const names: string[] = [];
  const re = /\S+/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const tok = m[0];
    const braced = /^\$\{([^}]*)\}$/.exec(tok);
    const name = braced ? braced[1]! : tok;
    if (!NAME.test(name)) {
      throw new PipeError('PIPE_CONFIG_INVALID', `vpcflow format: "${tok}" at column ${m.index + 1} is not a field name`);
    }
    if (names.includes(name)) {
      throw new PipeError('PIPE_CONFIG_INVALID', `vpcflow format: field "${name}" at column ${m.index + 1} appears twice`);
    }
    names.push(name);
  }
  if (names.length === 0) throw new PipeError('PIPE_CONFIG_INVALID', 'vpcflow format: no fields');
  return names;
}

/**
 * The field list a header line names, or undefined when the line is data. Every token must look
 * like a field name and most must be known ones, so a header with a field AWS added later is still
 * recognised, while a data line (numbers, addresses, `-`, upper-case statuses) never is.
 */
export function headerFields(line: string): string[] | undefined {
  const tokens = line.trim().split(/\s+/);
  if (tokens.length === 0 || tokens[0] === '') return undefined;
  let known = 0;
  for (const t of tokens) {
    if (!NAME.test(t)) return undefined;
    if (VPC_FIELDS.has(t)) known++;
  }
  if (known * 2 <= tokens.length) return undefined;
  if (new Set(tokens).size !== tokens.length) return undefined;
  return tokens;
}
