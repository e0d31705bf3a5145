// `require` expressions (SPEC §4): a verification may ask for a combination of
// scopes, e.g. `scans:read AND (clearances:read OR clearances:write)`.
//
// Grammar (keywords are case-insensitive; `&&` and `||` are accepted as
// spellings of AND and OR; whitespace is free between tokens):
//
//   expression := and-term ( OR and-term )*
//   and-term   := primary ( AND primary )*
//   primary    := scope | '(' expression ')'
//
// AND binds tighter than OR. A scope is a concrete catalog name (`area:action`);
// wildcard patterns are refused, because "holds scans:*" would mean different
// things as the catalog grows. Parsing is one linear pass; the parsed tree is
// flat (`a AND b AND c` is one node with three operands) and is evaluated
// without allocating.
import { ValidationError } from '../errors.ts';
import { isScopeName, isScopePattern } from '../scopes/scope-catalog.ts';

/** Longest accepted expression, in characters (SPEC §4). */
export const MAX_REQUIRE_EXPRESSION_LENGTH = 1000;

/** Deepest accepted nesting of parentheses; deeper input is refused before it can exhaust the stack. */
export const MAX_REQUIRE_EXPRESSION_DEPTH = 32;

/**
 * A parsed `require` expression. `and` and `or` nodes have at least two
 * operands, and an operand never has its parent's kind (parsing flattens
 * `a AND (b AND c)` into one `and` node).
 */
export type RequireExpression =
  | { readonly kind: 'scope'; readonly scope: string }
  | { readonly kind: 'and'; readonly operands: readonly RequireExpression[] }
  | { readonly kind: 'or'; readonly operands: readonly RequireExpression[] };

type Token =
  | { type: 'scope'; text: string; position: number }
  | { type: 'and' | 'or' | '(' | ')'; text: string; position: number }
  | { type: 'end'; text: string; position: number };

function invalid(message: string): ValidationError {
  return ValidationError.field('require', message);
}

function isWordChar(code: number): boolean {
  return (
    (code >= 0x61 && code <= 0x7a) || // a-z
    (code >= 0x41 && code <= 0x5a) || // A-Z, so `Scans:read` is reported as a word, not a stray letter
    (code >= 0x30 && code <= 0x39) || // 0-9
    code === 0x5f || // _
    code === 0x2d || // -
    code === 0x3a || // :
    code === 0x2a // *
  );
}

function isSpace(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d;
}

// Positions in messages count characters from 1.
function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const code = text.charCodeAt(i);
    const position = i + 1;
    if (isSpace(code)) {
      i += 1;
    } else if (code === 0x28 || code === 0x29) {
      tokens.push({ type: code === 0x28 ? '(' : ')', text: text[i]!, position });
      i += 1;
    } else if ((code === 0x26 || code === 0x7c) && text.charCodeAt(i + 1) === code) {
      tokens.push({ type: code === 0x26 ? 'and' : 'or', text: text.slice(i, i + 2), position });
      i += 2;
    } else if (isWordChar(code)) {
      let end = i + 1;
      while (end < text.length && isWordChar(text.charCodeAt(end))) end += 1;
      const word = text.slice(i, end);
      const keyword = word.toLowerCase();
      if (keyword === 'and' || keyword === 'or') {
        tokens.push({ type: keyword, text: word, position });
      } else if (isScopeName(word)) {
        tokens.push({ type: 'scope', text: word, position });
      } else if (isScopePattern(word)) {
        throw invalid(`names the wildcard pattern '${word}' at position ${position}; name concrete scopes instead, e.g. scans:read OR scans:write`);
      } else {
        throw invalid(`has '${word}' at position ${position}, which is not a scope name (lowercase area:action, e.g. scans:read)`);
      }
      i = end;
    } else {
      const char = String.fromCodePoint(text.codePointAt(i)!);
      throw invalid(`has an unexpected character ${JSON.stringify(char)} at position ${position}`);
    }
  }
  tokens.push({ type: 'end', text: '', position: text.length + 1 });
  return tokens;
}

function describeToken(token: Token): string {
  return token.type === 'end' ? 'the end of the expression' : `'${token.text}'`;
}

class Parser {
  private index = 0;
  private readonly tokens: Token[];

  constructor(tokens: Token[]) {
    this.tokens = tokens;
  }

  parse(): RequireExpression {
    const expression = this.parseOr(0);
    const next = this.peek();
    if (next.type === ')') throw invalid(`has an unmatched ')' at position ${next.position}`);
    if (next.type !== 'end') throw invalid(`expects AND or OR at position ${next.position}, found ${describeToken(next)}`);
    return expression;
  }

  private peek(): Token {
    return this.tokens[this.index]!;
  }

  private parseOr(depth: number): RequireExpression {
    const operands: RequireExpression[] = [];
    pushFlat(operands, 'or', this.parseAnd(depth));
    while (this.peek().type === 'or') {
      this.index += 1;
      pushFlat(operands, 'or', this.parseAnd(depth));
    }
    return operands.length === 1 ? operands[0]! : Object.freeze({ kind: 'or', operands: Object.freeze(operands) });
  }

  private parseAnd(depth: number): RequireExpression {
    const operands: RequireExpression[] = [];
    pushFlat(operands, 'and', this.parsePrimary(depth));
    while (this.peek().type === 'and') {
      this.index += 1;
      pushFlat(operands, 'and', this.parsePrimary(depth));
    }
    return operands.length === 1 ? operands[0]! : Object.freeze({ kind: 'and', operands: Object.freeze(operands) });
  }

  private parsePrimary(depth: number): RequireExpression {
    const token = this.peek();
    if (token.type === 'scope') {
      this.index += 1;
      return Object.freeze({ kind: 'scope', scope: token.text });
    }
    if (token.type === '(') {
      if (depth >= MAX_REQUIRE_EXPRESSION_DEPTH) {
        throw invalid(`nests parentheses deeper than ${MAX_REQUIRE_EXPRESSION_DEPTH} levels at position ${token.position}`);
      }
      this.index += 1;
      const inner = this.parseOr(depth + 1);
      const close = this.peek();
      if (close.type === 'end') throw invalid(`has an unclosed '(' at position ${token.position}`);
      if (close.type !== ')') throw invalid(`expects AND, OR or ')' at position ${close.position}, found ${describeToken(close)}`);
      this.index += 1;
      return inner;
    }
    const after = this.tokens[this.index - 1];
    const context = after ? ` after '${after.text}'` : '';
    throw invalid(`expects a scope or '('${context} at position ${token.position}, found ${describeToken(token)}`);
  }
}

// `a AND (b AND c)` becomes one node, so every tree has one canonical shape.
function pushFlat(operands: RequireExpression[], kind: 'and' | 'or', operand: RequireExpression): void {
  if (operand.kind === kind) operands.push(...operand.operands);
  else operands.push(operand);
}

/**
 * Parses a `require` expression. Throws a `ValidationError` on the `require`
 * field whose message gives the position (counting from 1) of the problem.
 *
 * @example
 * const expr = parseRequireExpression('scans:read AND (clearances:read OR clearances:write)');
 * evaluateRequire(expr, new Set(['scans:read', 'clearances:write'])); // true
 */
export function parseRequireExpression(text: string): RequireExpression {
  if (typeof text !== 'string') throw invalid('must be a string');
  if (text.length > MAX_REQUIRE_EXPRESSION_LENGTH) {
    throw invalid(`is longer than ${MAX_REQUIRE_EXPRESSION_LENGTH} characters`);
  }
  const tokens = tokenize(text);
  if (tokens.length === 1) throw invalid('is empty');
  return new Parser(tokens).parse();
}

/** Whether scopes `held` satisfy the expression. Short-circuits and allocates nothing. */
export function evaluateRequire(expr: RequireExpression, held: ReadonlySet<string>): boolean {
  switch (expr.kind) {
    case 'scope':
      return held.has(expr.scope);
    case 'and': {
      const operands = expr.operands;
      for (let i = 0; i < operands.length; i++) if (!evaluateRequire(operands[i]!, held)) return false;
      return true;
    }
    case 'or': {
      const operands = expr.operands;
      for (let i = 0; i < operands.length; i++) if (evaluateRequire(operands[i]!, held)) return true;
      return false;
    }
  }
}

/** Every scope the expression mentions, once each, in order of first appearance. */
export function requiredScopesOf(expr: RequireExpression): string[] {
  const seen = new Set<string>();
  collectScopes(expr, seen);
  return [...seen];
}

function collectScopes(expr: RequireExpression, into: Set<string>): void {
  if (expr.kind === 'scope') into.add(expr.scope);
  else for (const operand of expr.operands) collectScopes(operand, into);
}

/**
 * Scopes that, added to `held`, would satisfy the expression; empty when it is
 * already satisfied. Every operand of an AND contributes what it lacks; an OR
 * contributes only its cheapest operand (fewest scopes lacking, the first on a
 * tie). So `a AND (b OR c)` with only `a` held answers `['b']`. The answer is
 * always sufficient but not always the smallest possible: finding that is a
 * set-cover problem, e.g. `(a OR b) AND (b OR c)` with nothing held answers
 * `['a', 'b']` where `['b']` would do.
 */
export function missingScopesFor(expr: RequireExpression, held: ReadonlySet<string>): string[] {
  if (evaluateRequire(expr, held)) return [];
  return [...new Set(lackingScopes(expr, held))];
}

function lackingScopes(expr: RequireExpression, held: ReadonlySet<string>): string[] {
  switch (expr.kind) {
    case 'scope':
      return held.has(expr.scope) ? [] : [expr.scope];
    case 'and':
      return expr.operands.flatMap((operand) => lackingScopes(operand, held));
    case 'or': {
      let cheapest: string[] | undefined;
      for (const operand of expr.operands) {
        const lacking = [...new Set(lackingScopes(operand, held))];
        if (lacking.length === 0) return [];
        if (!cheapest || lacking.length < cheapest.length) cheapest = lacking;
      }
      return cheapest!;
    }
  }
}

/**
 * Writes the expression in its canonical form: upper-case keywords, single
 * spaces, and parentheses around every group, so `(a AND b) OR c` reads the
 * way it evaluates. Parsing the output gives back an equal tree.
 */
export function formatRequireExpression(expr: RequireExpression): string {
  if (expr.kind === 'scope') return expr.scope;
  const separator = expr.kind === 'and' ? ' AND ' : ' OR ';
  return expr.operands.map((operand) => (operand.kind === 'scope' ? operand.scope : `(${formatRequireExpression(operand)})`)).join(separator);
}
