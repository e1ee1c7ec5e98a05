import { describe, expect, it } from 'vitest';
import { isSecretName, redactText, redactUrl } from '../src/redact.js';

describe('redactUrl', () => {
  it.each([
    ['postgres://pipe:pw@h:5432/db', 'postgres://pipe:***@h:5432/db'],
    ['postgresql://pipe:s3cr3t@db.internal/pipe?sslmode=require', 'postgresql://pipe:***@db.internal/pipe?sslmode=require'],
    ['http://user:s3cr3t@127.0.0.1:9000', 'http://user:***@127.0.0.1:9000'],
    // A password with an unencoded @ or : is hidden whole: the host is after the last @.
    ['postgres://pipe:p@ss:w0rd@h/db', 'postgres://pipe:***@h/db'],
    ['http://user:@host/', 'http://user:***@host/'],
    // Nothing to hide: a user name alone, no userinfo, or not a URL at all.
    ['postgres://pipe@db.internal:5432/pipe', 'postgres://pipe@db.internal:5432/pipe'],
    ['http://127.0.0.1:9000/bucket/key', 'http://127.0.0.1:9000/bucket/key'],
    ['s3://bucket/AWSLogs/a:b@c.json', 's3://bucket/AWSLogs/a:b@c.json'],
    ['./.pipe/state.db', './.pipe/state.db'],
    [
      'https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20240301%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240301T000000Z&X-Amz-Expires=900&X-Amz-Security-Token=FwoGZXIvYXdzE&X-Amz-Signature=0123abcd&X-Amz-SignedHeaders=host',
      'https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=***&X-Amz-Date=20240301T000000Z&X-Amz-Expires=900&X-Amz-Security-Token=***&X-Amz-Signature=***&X-Amz-SignedHeaders=host',
    ],
    ['https://h/p?AWSAccessKeyId=AKIA&Signature=abc%2B&Expires=1', 'https://h/p?AWSAccessKeyId=***&Signature=***&Expires=1'],
  ])('%s', (url, expected) => {
    expect(redactUrl(url)).toBe(expected);
  });
});

describe('redactText', () => {
  const env = { AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY', AWS_SESSION_TOKEN: 'short' };

  it.each([
    ['connect to postgres://pipe:hunter22@db:5432/pipe failed', 'connect to postgres://pipe:***@db:5432/pipe failed'],
    // The AWS SDK's debug dump of an invalid endpoint, as JSON inside a JSON log line.
    ['{"error":{"code":"ERR_INVALID_URL","input":"http://user:s3cr3t@127.0.0.1:99999"}}', '{"error":{"code":"ERR_INVALID_URL","input":"http://user:***@127.0.0.1:99999"}}'],
    ['{\\"input\\":\\"http://user:s3cr3t@h:1\\"}', '{\\"input\\":\\"http://user:***@h:1\\"}'],
    // S3's SignatureDoesNotMatch carries the canonical request, with the session token header in it.
    ['CanonicalRequest: GET\n/\nhost:s3\nx-amz-security-token:FwoGZXIvYXdzEJr\n', 'CanonicalRequest: GET\n/\nhost:s3\nx-amz-security-token:***\n'],
    ['"x-amz-security-token":"FwoGZXIvYXdzEJr","host":"h"', '"x-amz-security-token":"***","host":"h"'],
    ['"authorization":"AWS4-HMAC-SHA256 Credential=AKIA/x, SignedHeaders=host, Signature=abc","host":"h"', '"authorization":"***","host":"h"'],
    ['SignedHeaders=host, Signature=0123456789abcdef0123456789abcdef', 'SignedHeaders=host, Signature=***'],
    ['{"accessKeyId":"AKIA","secretAccessKey":"abc/def+ghi","sessionToken":"tok"}', '{"accessKeyId":"AKIA","secretAccessKey":"***","sessionToken":"***"}'],
    ['password=hunter22 user=pipe', 'password=*** user=pipe'],
    ['the key is wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY, sadly', 'the key is ***, sadly'],
    // Too short a value to hide without mangling ordinary words.
    ['a short story', 'a short story'],
    // Ordinary messages pass unchanged.
    ['s3://bkt/AWSLogs/x.json.gz: AccessDenied (HTTP 403): Access Denied', 's3://bkt/AWSLogs/x.json.gz: AccessDenied (HTTP 403): Access Denied'],
    ['file:///var/log/app.log: row 3, byte 120: token expected', 'file:///var/log/app.log: row 3, byte 120: token expected'],
    ['where: \'eventSource != "kms.amazonaws.com"\'', 'where: \'eventSource != "kms.amazonaws.com"\''],
  ])('%s', (text, expected) => {
    expect(redactText(text, env)).toBe(expected);
  });

  it('reads the secret environment variables from process.env by default', () => {
    const before = process.env.AWS_SESSION_TOKEN;
    process.env.AWS_SESSION_TOKEN = 'IQoJb3JpZ2luX2VjEXAMPLE';
    try {
      expect(redactText('token IQoJb3JpZ2luX2VjEXAMPLE rejected')).toBe('token *** rejected');
    } finally {
      if (before === undefined) delete process.env.AWS_SESSION_TOKEN;
      else process.env.AWS_SESSION_TOKEN = before;
    }
  });
});

describe('isSecretName', () => {
  it.each([
    ['DB_PASSWORD', true], ['PGPASS', true], ['DB_PASS_FILE', true], ['MYSQL_PWD', true], ['API_TOKEN', true], ['AWS_SECRET_ACCESS_KEY', true], ['GITHUB_API_KEY', true], ['APIKEY', true],
    ['TRAIL_BUCKET', false], ['S3_ENDPOINT', false], ['CONCURRENCY', false], ['AWS_REGION', false],
  ])('%s → %s', (name, secret) => {
    expect(isSecretName(name)).toBe(secret);
  });
});
