/**
 * The AWS SDK's client packages, loaded on first use. They are CommonJS: `import()` of one first
 * scans its entry module's source for named exports (cjs-module-lexer), a third of its load time
 * (the S3 client: 85–112 ms by import, 56–75 ms by require, measured on the bench machine), and
 * every s3 or cloudwatch run waits for it before its first request.
 */
import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);

export const s3Sdk = (): typeof import('@aws-sdk/client-s3') => load('@aws-sdk/client-s3') as typeof import('@aws-sdk/client-s3');

export const logsSdk = (): typeof import('@aws-sdk/client-cloudwatch-logs') =>
  load('@aws-sdk/client-cloudwatch-logs') as typeof import('@aws-sdk/client-cloudwatch-logs');

export const sqsSdk = (): typeof import('@aws-sdk/client-sqs') => load('@aws-sdk/client-sqs') as typeof import('@aws-sdk/client-sqs');
