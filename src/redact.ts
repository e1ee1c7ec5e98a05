/**
 * Secrets out of text meant for people: log lines, error messages, `pipe status`, the state file.
 * Credentials reach `pipe` only through the AWS SDK's chain, a URL's userinfo (an endpoint, a
 * `postgres://user:password@host/db` state URL) or `${VAR}` values, and the places they can come
 * back out are the messages dependencies build from them (an SDK error carrying a URL or an S3
 * SignatureDoesNotMatch carrying the canonical request). Every message passes through here:
 * PipeError's constructor and the logger call `redactText`, so a new message cannot forget to.
 *
 * What is hidden: the password of a URL's userinfo (the user name stays: it says who connected),
 * credential query parameters of presigned URLs (`X-Amz-Signature`, `X-Amz-Credential`,
 * `X-Amz-Security-Token`, …), the values of `Authorization` and `x-amz-security-token` headers and
 * of `secretAccessKey`/`sessionToken`/`password` fields, a SigV4 `Signature=`, and the literal values
 * of the well-known secret environment variables. Each is replaced by `***`, keeping the rest.
 */

const MASK = '***';

/** `scheme://` then the authority: up to the first character that cannot be part of it. */
const URL_AUTHORITY = /([a-z][a-z0-9+.-]*:\/\/)([^\s/?#"'<>\\]*)/gi;
/** Query parameters that are credentials (presigned S3 URLs, tokens in URLs). */
const QUERY_CREDENTIAL = /([?&;](?:X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|AWSAccessKeyId|access_token|token|password|passwd|secret|sig)=)[^&#\s"'<>\\]*/gi;
/** `name: value`, `name=value` and `"name":"value"` (also JSON-escaped) forms of secret fields and headers. */
const SECRET_FIELD = /((?:x-amz-security-token|secretAccessKey|secret_access_key|sessionToken|session_token|password|passwd)\\?["']?\s*[:=]\s*\\?["']?)[^\s"'\\,;&}\]]+/gi;
/** An Authorization header's value, up to the end of its quoted string or line. */
const AUTHORIZATION = /(authorization\\?["']?\s*[:=]\s*\\?["']?)[^"'\\\n]+/gi;
/** A SigV4 signature (64 hex digits) outside a query string, as in an Authorization header. */
const SIGNATURE = /(\bSignature=)[0-9a-f]{16,}/gi;
/**
 * Environment variables whose values are credentials whatever text they turn up in. The access key
 * id is not secret by itself, but S3 echoes it in errors (`<AWSAccessKeyId>`) and it is half a pair.
 */
const SECRET_ENV = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_SECURITY_TOKEN', 'PGPASSWORD'];
/** Shorter values are not replaced: `test` would be masked in every word that contains it. */
const MIN_ENV_SECRET = 8;

/** The userinfo's password hidden: `postgres://pipe:pw@h:5432/db` → `postgres://pipe:***@h:5432/db`. */
function maskAuthority(_match: string, scheme: string, authority: string): string {
  const at = authority.lastIndexOf('@');
  if (at < 0) return scheme + authority;
  const userinfo = authority.slice(0, at);
  const colon = userinfo.indexOf(':');
  if (colon < 0) return scheme + authority;
  return `${scheme}${userinfo.slice(0, colon)}:${MASK}${authority.slice(at)}`;
}

/** A URL with its userinfo password and credential query parameters replaced by `***`. */
export function redactUrl(url: string): string {
  return url.replace(URL_AUTHORITY, maskAuthority).replace(QUERY_CREDENTIAL, `$1${MASK}`);
}

/** Text with every secret this module recognizes replaced by `***` (see the file's comment). */
export function redactText(text: string, env: Readonly<Record<string, string | undefined>> = process.env): string {
  let out = text;
  // Cheap tests first: most messages hold no URL, field or header worth a regular expression.
  if (out.includes('://')) out = out.replace(URL_AUTHORITY, maskAuthority);
  if (out.includes('=')) out = out.replace(QUERY_CREDENTIAL, `$1${MASK}`).replace(SIGNATURE, `$1${MASK}`);
  if (/token|secret|passw|authorization/i.test(out)) out = out.replace(SECRET_FIELD, `$1${MASK}`).replace(AUTHORIZATION, `$1${MASK}`);
  for (const name of SECRET_ENV) {
    const value = env[name];
    if (value && value.length >= MIN_ENV_SECRET && out.includes(value)) out = out.split(value).join(MASK);
  }
  return out;
}

/**
 * True when a variable's name says its value is a secret (`DB_PASSWORD`, `PGPASS`, `API_TOKEN`,
 * `AWS_SECRET_ACCESS_KEY`). A false positive only makes a config problem quote `${NAME}` instead of its value.
 */
export function isSecretName(name: string): boolean {
  return /secret|token|pass(?:w|_|$)|pwd|credential|private|api_?key|auth/i.test(name);
}
