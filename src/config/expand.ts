/**
 * `${NAME}` and `${NAME:-default}` in string values, expanded once from an environment.
 * As in the shell, `:-` also replaces a variable that is set but empty, and `${NAME}` with NAME
 * set to the empty string yields the empty string. `$${` writes a literal `${` (VPC Flow `format`
 * strings are made of `${field}` tokens). The result is never scanned again, so a variable whose
 * value contains `${` cannot smuggle in another expansion.
 */

export interface Expansion {
  /** The text with every reference replaced (best effort when there are problems). */
  value: string;
  /** True if at least one `${…}` reference was replaced: the value came from the environment. */
  substituted: boolean;
  /** One sentence per problem: unset variables, unterminated or malformed references. */
  problems: string[];
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function expandVariables(text: string, env: Readonly<Record<string, string | undefined>>): Expansion {
  const problems: string[] = [];
  let value = '';
  let substituted = false;
  let at = 0;
  while (at < text.length) {
    const dollar = text.indexOf('$', at);
    if (dollar < 0) break;
    value += text.slice(at, dollar);
    if (text.startsWith('$${', dollar)) {
      value += '${';
      at = dollar + 3;
      continue;
    }
    if (text[dollar + 1] !== '{') {
      value += '$';
      at = dollar + 1;
      continue;
    }
    const close = text.indexOf('}', dollar + 2);
    if (close < 0) {
      problems.push(`'\${' without a closing '}' (write $\${ for a literal \${)`);
      value += text.slice(dollar);
      at = text.length;
      break;
    }
    const body = text.slice(dollar + 2, close);
    at = close + 1;
    const sep = body.indexOf(':-');
    const name = sep < 0 ? body : body.slice(0, sep);
    const fallback = sep < 0 ? undefined : body.slice(sep + 2);
    if (!NAME.test(name)) {
      problems.push(`'\${${body}}' is not a variable reference: names are letters, digits and _ (write $\${ for a literal \${)`);
      value += `\${${body}}`;
      continue;
    }
    if (fallback?.includes('${')) {
      problems.push(`the default of \${${name}} cannot contain another \${…} reference`);
      continue;
    }
    const set = env[name];
    substituted = true;
    if (fallback !== undefined && (set === undefined || set === '')) value += fallback;
    else if (set !== undefined) value += set;
    else problems.push(`variable ${name} is not set and has no default (write \${${name}:-default} to give one)`);
  }
  value += text.slice(at);
  return { value, substituted, problems };
}
