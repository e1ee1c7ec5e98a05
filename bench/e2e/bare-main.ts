/**
 * The bare scripts as processes of their own, as the issue measured them and as `pipe` runs:
 * `node bare-main.js cloudtrail|vpcflow <dir> <out>` prints `{ rows, bytes }`.
 */
import { bareCloudTrail, bareVpcFlow } from './bare.js';

const [kind, dir, out] = process.argv.slice(2);
if (!dir || !out || (kind !== 'cloudtrail' && kind !== 'vpcflow')) {
  console.error('usage: bare-main.js cloudtrail|vpcflow <dir> <out>');
  process.exit(2);
}
console.log(JSON.stringify(kind === 'cloudtrail' ? bareCloudTrail(dir, out) : bareVpcFlow(dir, out)));
