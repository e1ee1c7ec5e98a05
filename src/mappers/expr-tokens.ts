/**
 * The lexer of the filter expression language (see expr.ts): strings in double or single quotes,
 * field names quoted in backticks, numbers, `/regex/flags` right after `=~`/`!~`, names and
 * operators. Every token keeps its 1-based column for error messages.
 */
import { PipeError } from '../errors.js';

export type TokenKind = 'name' | 'quoted' | 'string' | 'number' | 'regex' | 'op' | 'end';
export interface Token {
  kind: TokenKind;
  text: string;
  value?: unknown;
  col: number;
}

const OPS = ['==', '!=', '<=', '>=', '=~', '!~', '&&', '||', '<', '>', '!', '(', ')', '[', ']', ',', '.'];
const NAME_START = /[A-Za-z_$@]/;
const NAME_PART = /[A-Za-z0-9_$@-]/;
export const KEYWORDS = new Set(['and', 'or', 'not', 'in', 'true', 'false', 'null']);

/** The keyword a name spells (`and` or `AND`), or undefined; other spellings are field names. */
export function keyword(text: string): string | undefined {
  const lower = text.toLowerCase();
  return KEYWORDS.has(lower) && (text === lower || text === text.toUpperCase()) ? lower : undefined;
}

export function fail(where: string, msg: string, col: number): never {
  throw new PipeError('PIPE_CONFIG_INVALID', `${where}: ${msg} at column ${col}`);
}

export function tokenize(src: string, where: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    const col = i + 1;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '"' || c === "'" || c === '`') {
      let j = i + 1;
      let text = '';
      while (j < src.length && src[j] !== c) {
        if (src[j] === '\\' && j + 1 < src.length) {
          const e = src[j + 1]!;
          const map: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', '"': '"', "'": "'", '`': '`' };
          if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(src.slice(j + 2, j + 6))) {
            text += String.fromCharCode(parseInt(src.slice(j + 2, j + 6), 16));
            j += 6;
            continue;
          }
          text += map[e] ?? `\\${e}`;
          j += 2;
        } else {
          text += src[j];
          j++;
        }
      }
      if (j >= src.length) fail(where, 'unterminated string', col);
      out.push({ kind: c === '`' ? 'quoted' : 'string', text: src.slice(i, j + 1), value: text, col });
      i = j + 1;
    } else if (c === '/' && (out.at(-1)?.text === '=~' || out.at(-1)?.text === '!~')) {
      let j = i + 1;
      while (j < src.length && src[j] !== '/') j += src[j] === '\\' ? 2 : 1;
      if (j >= src.length) fail(where, 'unterminated regular expression', col);
      let k = j + 1;
      while (k < src.length && /[a-z]/.test(src[k]!)) k++;
      out.push({ kind: 'regex', text: src.slice(i, k), value: [src.slice(i + 1, j), src.slice(j + 1, k)], col });
      i = k;
    } else if (/[0-9]/.test(c) || (c === '-' && /[0-9]/.test(src[i + 1] ?? ''))) {
      const m = /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(src.slice(i))!;
      if (NAME_START.test(src[i + m[0].length] ?? '')) fail(where, `malformed number "${m[0]}${src[i + m[0].length]}"`, col);
      out.push({ kind: 'number', text: m[0], value: Number(m[0]), col });
      i += m[0].length;
    } else if (NAME_START.test(c)) {
      let j = i + 1;
      while (j < src.length && NAME_PART.test(src[j]!)) j++;
      out.push({ kind: 'name', text: src.slice(i, j), col });
      i = j;
    } else {
      const op = OPS.find((o) => src.startsWith(o, i));
      if (!op) fail(where, `unexpected "${c}"`, col);
      out.push({ kind: 'op', text: op, col });
      i += op.length;
    }
  }
  out.push({ kind: 'end', text: 'end of expression', col: src.length + 1 });
  return out;
}

