/**
 * The small expression language of `filter`'s `where`. No eval and no Function: the text is parsed
 * once, at create time, into a tree of closures, and a syntax error is a PIPE_CONFIG_INVALID naming
 * its column. Precedence, loosest first: `or`/`||`, `and`/`&&`, `not`/`!`, one comparison
 * (`== != < <= > >=`, `in [..]`, `not in [..]`, `=~ re`, `!~ re`), then operands: field paths
 * (`userIdentity.type`, `` additionalEventData.`x-amz-id-2` ``, `resources[0].ARN`), string,
 * number, boolean and null literals, lists, parentheses and functions (`exists(path)`, `lower(x)`,
 * `upper(x)`, `len(x)`, `startsWith(x, s)`, `endsWith(x, s)`, `contains(x, y)`).
 *
 * Semantics are strict and never throw on data: a missing field is null, `==` compares type and
 * value (`dstport == 22` is true for the number 22, not for the string "22"), ordering compares
 * two numbers or two strings and is false otherwise, `=~` tests strings (numbers as their text).
 */
import { fail, keyword, tokenize, type Token } from './expr-tokens.js';
import { checkSegment, getPath, type FieldPath } from './path.js';

export type Evaluator = (row: unknown) => unknown;
export type Predicate = (row: unknown) => boolean;

const norm = (v: unknown): unknown => (v === undefined ? null : v);

function ordered(op: string): (a: unknown, b: unknown) => boolean {
  const cmp = (a: unknown, b: unknown): number | undefined =>
    (typeof a === 'number' && typeof b === 'number') || (typeof a === 'string' && typeof b === 'string')
      ? a < b ? -1 : a > b ? 1 : 0
      : undefined;
  switch (op) {
    case '<': return (a, b) => (cmp(a, b) ?? 0) < 0;
    case '<=': return (a, b) => { const c = cmp(a, b); return c !== undefined && c <= 0; };
    case '>': return (a, b) => (cmp(a, b) ?? 0) > 0;
    default: return (a, b) => { const c = cmp(a, b); return c !== undefined && c >= 0; };
  }
}

function textOf(v: unknown): string | undefined {
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
}

class Parser {
  #t: Token[];
  #i = 0;
  constructor(readonly src: string, readonly where: string) {
    this.#t = tokenize(src, where);
  }
  #tok(): Token {
    return this.#t[this.#i]!;
  }
  /** Whether the current token is one of these operators or keywords (keywords in lower or upper case). */
  #is(...texts: string[]): boolean {
    const t = this.#tok();
    if (t.kind === 'op') return texts.includes(t.text);
    return t.kind === 'name' && keyword(t.text) !== undefined && texts.includes(keyword(t.text)!);
  }
  #expect(text: string): void {
    if (!(this.#tok().kind === 'op' && this.#tok().text === text)) this.#unexpected(`expected "${text}"`);
    this.#i++;
  }
  #unexpected(hint?: string): never {
    const t = this.#tok();
    const what = t.kind === 'end' ? 'end of expression' : t.kind === 'string' ? `string ${t.text}` : `"${t.text}"`;
    return fail(this.where, `unexpected ${what}${hint ? ` (${hint})` : ''}`, t.col);
  }

  parse(): Evaluator {
    if (this.#tok().kind === 'end') fail(this.where, 'empty expression', 1);
    const e = this.#or();
    if (this.#tok().kind !== 'end') this.#unexpected();
    return e;
  }
  #or(): Evaluator {
    let left = this.#and();
    while (this.#is('or', '||')) {
      this.#i++;
      const l = left, r = this.#and();
      left = (row) => Boolean(l(row)) || Boolean(r(row));
    }
    return left;
  }
  #and(): Evaluator {
    let left = this.#not();
    while (this.#is('and', '&&')) {
      this.#i++;
      const l = left, r = this.#not();
      left = (row) => Boolean(l(row)) && Boolean(r(row));
    }
    return left;
  }
  #not(): Evaluator {
    if (this.#is('not', '!')) {
      this.#i++;
      const inner = this.#not();
      return (row) => !inner(row);
    }
    return this.#comparison();
  }
  #comparison(): Evaluator {
    const left = this.#operand();
    const t = this.#tok();
    if (t.kind === 'op' && ['==', '!=', '<', '<=', '>', '>='].includes(t.text)) {
      this.#i++;
      const right = this.#operand();
      if (t.text === '==') return (row) => norm(left(row)) === norm(right(row));
      if (t.text === '!=') return (row) => norm(left(row)) !== norm(right(row));
      const f = ordered(t.text);
      return (row) => f(left(row), right(row));
    }
    if (t.kind === 'op' && (t.text === '=~' || t.text === '!~')) {
      this.#i++;
      const re = this.#regex();
      const match: Evaluator = (row) => { const s = textOf(left(row)); return s !== undefined && re.test(s); };
      return t.text === '=~' ? match : (row) => !match(row);
    }
    const next = this.#t[this.#i + 1];
    const negated = this.#is('not') && next?.kind === 'name' && keyword(next.text) === 'in';
    if (negated || this.#is('in')) {
      this.#i += negated ? 2 : 1;
      const member = this.#membership(left);
      return negated ? (row) => !member(row) : member;
    }
    return left;
  }
  #regex(): RegExp {
    const t = this.#tok();
    let source: string, flags = '';
    if (t.kind === 'regex') [source, flags] = t.value as [string, string];
    else if (t.kind === 'string') source = t.value as string;
    else return this.#unexpected('expected a regular expression: a string or /re/flags');
    this.#i++;
    try {
      return new RegExp(source, flags.replaceAll('g', '').replaceAll('y', ''));
    } catch (err) {
      const reason = (err as Error).message.replace(/^Invalid regular expression: /, '');
      return fail(this.where, `invalid regular expression ${reason}`, t.col);
    }
  }
  #membership(left: Evaluator): Evaluator {
    if (this.#tok().kind === 'op' && this.#tok().text === '[') {
      const items = this.#list();
      if (items.every((it) => it.constant)) {
        const set = new Set(items.map((it) => norm(it.value)));
        return (row) => set.has(norm(left(row)));
      }
      return (row) => { const v = norm(left(row)); return items.some((it) => norm(it.ev(row)) === v); };
    }
    const right = this.#operand();
    return (row) => {
      const r = right(row);
      return Array.isArray(r) && r.some((x) => norm(x) === norm(left(row)));
    };
  }
  #list(): Array<{ ev: Evaluator; constant: boolean; value?: unknown }> {
    this.#expect('[');
    const items: Array<{ ev: Evaluator; constant: boolean; value?: unknown }> = [];
    while (!(this.#tok().kind === 'op' && this.#tok().text === ']')) {
      const t = this.#tok();
      const kw = t.kind === 'name' ? keyword(t.text) : undefined;
      const literal = t.kind === 'string' || t.kind === 'number' || kw === 'true' || kw === 'false' || kw === 'null';
      const ev = this.#operand();
      items.push(literal ? { ev, constant: true, value: ev(undefined) } : { ev, constant: false });
      if (this.#tok().kind === 'op' && this.#tok().text === ',') this.#i++;
      else if (!(this.#tok().kind === 'op' && this.#tok().text === ']')) this.#unexpected('expected "," or "]"');
    }
    this.#i++;
    return items;
  }
  #operand(): Evaluator {
    const t = this.#tok();
    if (t.kind === 'string' || t.kind === 'number') {
      this.#i++;
      const v = t.value;
      return () => v;
    }
    if (t.kind === 'op' && t.text === '(') {
      this.#i++;
      const e = this.#or();
      this.#expect(')');
      return e;
    }
    if (t.kind === 'op' && t.text === '[') {
      const items = this.#list();
      return (row) => items.map((it) => it.ev(row));
    }
    if (t.kind === 'name' && this.#t[this.#i + 1]?.text === '(' && this.#t[this.#i + 1]?.kind === 'op') {
      return this.#call();
    }
    const kw = t.kind === 'name' ? keyword(t.text) : undefined;
    if (kw === 'true' || kw === 'false' || kw === 'null') {
      this.#i++;
      const v = kw === 'null' ? null : kw === 'true';
      return () => v;
    }
    if (kw !== undefined) this.#unexpected('a keyword; quote a field of that name with backticks');
    if (t.kind === 'name' || t.kind === 'quoted') {
      const path = this.#path();
      return (row) => getPath(row, path);
    }
    return this.#unexpected('expected a field, a literal or "("');
  }
  #path(): FieldPath {
    const segs: string[] = [];
    const seg = (): void => {
      const t = this.#tok();
      if (t.kind === 'name') segs.push(checkSegment(t.text, this.where, t.col));
      else if (t.kind === 'quoted') segs.push(checkSegment(t.value as string, this.where, t.col));
      else this.#unexpected('expected a field name');
      this.#i++;
    };
    seg();
    for (;;) {
      const t = this.#tok();
      if (t.kind === 'op' && t.text === '.') {
        this.#i++;
        seg();
      } else if (t.kind === 'op' && t.text === '[') {
        this.#i++;
        const k = this.#tok();
        if (k.kind === 'number' && Number.isInteger(k.value) && (k.value as number) >= 0) segs.push(String(k.value));
        else if (k.kind === 'string') segs.push(checkSegment(k.value as string, this.where, k.col));
        else this.#unexpected('expected an index or a quoted name');
        this.#i++;
        this.#expect(']');
      } else {
        return segs;
      }
    }
  }
  #call(): Evaluator {
    const t = this.#tok();
    const name = t.text;
    this.#i += 2;
    if (name === 'exists') {
      const path = this.#path();
      this.#expect(')');
      return (row) => getPath(row, path) !== undefined;
    }
    const args: Evaluator[] = [];
    while (!(this.#tok().kind === 'op' && this.#tok().text === ')')) {
      args.push(this.#or());
      if (this.#tok().kind === 'op' && this.#tok().text === ',') this.#i++;
      else if (!(this.#tok().kind === 'op' && this.#tok().text === ')')) this.#unexpected('expected "," or ")"');
    }
    this.#i++;
    const arity = (n: number): void => {
      if (args.length !== n) fail(this.where, `${name}() takes ${n} argument${n > 1 ? 's' : ''}, got ${args.length}`, t.col);
    };
    const [a, b] = args as [Evaluator, Evaluator];
    switch (name) {
      case 'lower': arity(1); return (row) => textOf(a(row))?.toLowerCase() ?? null;
      case 'upper': arity(1); return (row) => textOf(a(row))?.toUpperCase() ?? null;
      case 'len': arity(1); return (row) => { const v = a(row); return typeof v === 'string' || Array.isArray(v) ? v.length : null; };
      case 'startsWith': arity(2); return (row) => { const s = textOf(a(row)), p = textOf(b(row)); return s !== undefined && p !== undefined && s.startsWith(p); };
      case 'endsWith': arity(2); return (row) => { const s = textOf(a(row)), p = textOf(b(row)); return s !== undefined && p !== undefined && s.endsWith(p); };
      case 'contains': arity(2); return (row) => {
        const s = a(row), x = b(row);
        if (Array.isArray(s)) return s.some((e) => norm(e) === norm(x));
        const st = textOf(s), xt = textOf(x);
        return st !== undefined && xt !== undefined && st.includes(xt);
      };
      default: return fail(this.where, `unknown function ${name}()`, t.col);
    }
  }
}

/** Compiles an expression to a predicate; throws PIPE_CONFIG_INVALID with the column of the problem. */
export function compileExpression(text: string, where = 'where'): Predicate {
  const ev = new Parser(text, where).parse();
  return (row) => Boolean(ev(row));
}
