import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ValidationError } from '../errors.ts';
import {
  MAX_REQUIRE_EXPRESSION_DEPTH,
  MAX_REQUIRE_EXPRESSION_LENGTH,
  evaluateRequire,
  formatRequireExpression,
  missingScopesFor,
  parseRequireExpression,
  requiredScopesOf,
  type RequireExpression,
} from './require-expression.ts';

const scope = (name: string): RequireExpression => ({ kind: 'scope', scope: name });
const and = (...operands: RequireExpression[]): RequireExpression => ({ kind: 'and', operands });
const or = (...operands: RequireExpression[]): RequireExpression => ({ kind: 'or', operands });

function parseError(text: string): ValidationError {
  try {
    parseRequireExpression(text);
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error(`expected ${JSON.stringify(text)} to be refused`);
}

describe('parseRequireExpression', () => {
  it.each<[string, RequireExpression]>([
    ['scans:read', scope('scans:read')],
    ['  scans:read\t', scope('scans:read')],
    ['((scans:read))', scope('scans:read')],
    ['a:x AND b:x', and(scope('a:x'), scope('b:x'))],
    ['a:x OR b:x', or(scope('a:x'), scope('b:x'))],
    ['a:x and b:x Or c:x', or(and(scope('a:x'), scope('b:x')), scope('c:x'))],
    ['a:x OR b:x AND c:x', or(scope('a:x'), and(scope('b:x'), scope('c:x')))],
    ['(a:x OR b:x) AND c:x', and(or(scope('a:x'), scope('b:x')), scope('c:x'))],
    ['a:x AND (b:x AND c:x)', and(scope('a:x'), scope('b:x'), scope('c:x'))],
    ['a:x OR (b:x OR c:x) OR d:x', or(scope('a:x'), scope('b:x'), scope('c:x'), scope('d:x'))],
    ['a:x && (b:x || c:x)', and(scope('a:x'), or(scope('b:x'), scope('c:x')))],
    ['a:x&&b:x', and(scope('a:x'), scope('b:x'))],
    ['(a:x)AND(b:x)', and(scope('a:x'), scope('b:x'))],
    ['a:x\nAND\r\nb:x', and(scope('a:x'), scope('b:x'))],
    ['scans:read AND (clearances:read OR clearances:write)', and(scope('scans:read'), or(scope('clearances:read'), scope('clearances:write')))],
  ])('parses %j', (text, expected) => {
    expect(parseRequireExpression(text)).toEqual(expected);
  });

  it.each<[string, RegExp]>([
    ['', /is empty/],
    ['   ', /is empty/],
    ['AND', /expects a scope or '\(' at position 1, found 'AND'/],
    ['a:x AND', /expects a scope or '\(' after 'AND' at position 8, found the end of the expression/],
    ['a:x OR OR b:x', /expects a scope or '\(' after 'OR' at position 8, found 'OR'/],
    ['OR a:x', /at position 1, found 'OR'/],
    ['()', /expects a scope or '\(' after '\(' at position 2, found '\)'/],
    ['a:x b:x', /expects AND or OR at position 5, found 'b:x'/],
    ['(a:x b:x)', /expects AND, OR or '\)' at position 6, found 'b:x'/],
    ['(a:x AND b:x', /has an unclosed '\(' at position 1/],
    ['a:x)', /has an unmatched '\)' at position 4/],
    ['a:x AND b:x) OR (c:x', /has an unmatched '\)' at position 12/],
    ['a:x % b:x', /has an unexpected character "%" at position 5/],
    ['a:x & b:x', /has an unexpected character "&" at position 5/],
    ['a:x | b:x', /unexpected character "\|" at position 5/],
    ['a:x AND b:x\u0000', /unexpected character "\\u0000" at position 12/],
    ['a:x AND é:x', /unexpected character "é" at position 9/],
    ['scans', /'scans' at position 1, which is not a scope name/],
    ['Scans:Read', /'Scans:Read' at position 1, which is not a scope name/],
    ['a:x AND a:b:c', /'a:b:c' at position 9, which is not a scope name/],
    ['a:x ANDb:x', /'ANDb:x' at position 5, which is not a scope name/],
    ['scans:* OR a:x', /names the wildcard pattern 'scans:\*' at position 1/],
    ['a:x AND *:read', /names the wildcard pattern '\*:read' at position 9/],
    ['*:*', /'\*:\*' at position 1, which is not a scope name/],
  ])('refuses %j', (text, message) => {
    const error = parseError(text);
    expect(error.code).toBe('validation_failed');
    expect(error.errors).toHaveLength(1);
    expect(error.errors[0]!.field).toBe('require');
    expect(error.errors[0]!.message).toMatch(message);
    expect(error.message).toMatch(/^require: /);
  });

  it(`accepts exactly ${MAX_REQUIRE_EXPRESSION_LENGTH} characters and refuses one more`, () => {
    const base = Array.from({ length: 60 }, (_, i) => `s${String(i).padStart(3, '0')}:read`).join(' OR ');
    const exact = base + ' '.repeat(MAX_REQUIRE_EXPRESSION_LENGTH - base.length);
    expect(exact).toHaveLength(1000);
    expect(requiredScopesOf(parseRequireExpression(exact))).toHaveLength(60);
    expect(parseError(`${exact} `).errors[0]!.message).toBe('is longer than 1000 characters');
    expect(parseError('a:x OR '.repeat(200)).errors[0]!.message).toBe('is longer than 1000 characters');
  });

  it(`accepts ${MAX_REQUIRE_EXPRESSION_DEPTH} nested parentheses and refuses one more`, () => {
    const nested = (depth: number) => `${'('.repeat(depth)}a:x${')'.repeat(depth)}`;
    expect(parseRequireExpression(nested(MAX_REQUIRE_EXPRESSION_DEPTH))).toEqual(scope('a:x'));
    expect(parseError(nested(MAX_REQUIRE_EXPRESSION_DEPTH + 1)).errors[0]!.message).toBe(
      `nests parentheses deeper than ${MAX_REQUIRE_EXPRESSION_DEPTH} levels at position ${MAX_REQUIRE_EXPRESSION_DEPTH + 1}`,
    );
  });

  it('refuses hostile nesting within the length limit as a validation error, not a stack overflow', () => {
    expect(parseError(`${'('.repeat(498)}a:x${')'.repeat(498)}`).errors[0]!.message).toMatch(/nests parentheses deeper/);
    expect(parseError('('.repeat(1000)).errors[0]!.message).toMatch(/nests parentheses deeper/);
    expect(parseError('a:x AND ('.repeat(111)).errors[0]!.message).toMatch(/nests parentheses deeper/);
  });

  it('refuses input that is not a string', () => {
    expect(parseError(42 as unknown as string).errors[0]!.message).toBe('must be a string');
  });

  it('returns a frozen tree', () => {
    const expr = parseRequireExpression('a:x AND (b:x OR c:x)');
    expect(Object.isFrozen(expr)).toBe(true);
    expect(expr.kind === 'and' && Object.isFrozen(expr.operands)).toBe(true);
  });
});

describe('evaluateRequire', () => {
  const expr = 'scans:read AND (clearances:read OR clearances:write)';
  it.each<[string, string[], boolean]>([
    [expr, ['scans:read', 'clearances:read'], true],
    [expr, ['scans:read', 'clearances:write'], true],
    [expr, ['scans:read', 'clearances:read', 'clearances:write', 'reports:read'], true],
    [expr, ['scans:read'], false],
    [expr, ['clearances:read', 'clearances:write'], false],
    [expr, [], false],
    ['a:x OR b:x AND c:x', ['a:x'], true],
    ['a:x OR b:x AND c:x', ['b:x'], false],
    ['a:x OR b:x AND c:x', ['b:x', 'c:x'], true],
    ['(a:x OR b:x) AND c:x', ['a:x'], false],
    ['(a:x OR b:x) AND c:x', ['a:x', 'c:x'], true],
    ['a:x', ['a:xx', 'A:X'], false],
  ])('%s with %j held is %s', (text, held, expected) => {
    expect(evaluateRequire(parseRequireExpression(text), new Set(held))).toBe(expected);
  });
});

describe('requiredScopesOf', () => {
  it('lists every mentioned scope once, in order of first appearance', () => {
    expect(requiredScopesOf(parseRequireExpression('c:x AND (a:x OR c:x) OR b:x AND a:x'))).toEqual(['c:x', 'a:x', 'b:x']);
  });
});

describe('missingScopesFor', () => {
  it.each<[string, string[], string[]]>([
    ['a:x AND (b:x OR c:x)', ['a:x'], ['b:x']],
    ['a:x AND (b:x OR c:x)', ['a:x', 'c:x'], []],
    ['a:x AND (b:x OR c:x)', [], ['a:x', 'b:x']],
    ['a:x AND b:x AND a:x', [], ['a:x', 'b:x']],
    ['(a:x AND b:x) OR c:x', ['a:x'], ['b:x']],
    ['(a:x AND b:x) OR c:x', [], ['c:x']],
    ['(a:x AND b:x AND c:x) OR (d:x AND e:x)', ['a:x', 'b:x'], ['c:x']],
    ['(a:x OR b:x) AND (b:x OR c:x)', [], ['a:x', 'b:x']],
  ])('%s with %j held lacks %j', (text, held, expected) => {
    expect(missingScopesFor(parseRequireExpression(text), new Set(held))).toEqual(expected);
  });
});

describe('formatRequireExpression', () => {
  it('writes upper-case keywords and parenthesizes every group', () => {
    expect(formatRequireExpression(parseRequireExpression('a:x or b:x && c:x'))).toBe('a:x OR (b:x AND c:x)');
    expect(formatRequireExpression(parseRequireExpression('((a:x || b:x)) and c:x'))).toBe('(a:x OR b:x) AND c:x');
  });
});

describe('require expressions (properties)', () => {
  const scopeNames = ['a:read', 'a:write', 'b:read', 'b:write', 'c:read', 'd:x'];
  const arbScope = fc.constantFrom(...scopeNames).map(scope);
  // Canonical trees: n-ary nodes with at least two operands, never nested in their own kind.
  const { tree: anyTree } = fc.letrec<{ tree: RequireExpression; and: RequireExpression; or: RequireExpression }>((recurse) => ({
    tree: fc.oneof({ maxDepth: 5, depthIdentifier: 'tree', withCrossShrink: true }, arbScope, recurse('and'), recurse('or')),
    and: fc
      .array(fc.oneof({ maxDepth: 5, depthIdentifier: 'tree' }, arbScope, recurse('or')), { minLength: 2, maxLength: 4 })
      .map((operands) => and(...operands)),
    or: fc
      .array(fc.oneof({ maxDepth: 5, depthIdentifier: 'tree' }, arbScope, recurse('and')), { minLength: 2, maxLength: 4 })
      .map((operands) => or(...operands)),
  }));
  // Loose printing at most doubles the separators, so this keeps every printing under the length limit.
  const tree = anyTree.filter((expr) => formatRequireExpression(expr).length <= 600);
  const arbHeld = fc.subarray(scopeNames).map((held) => new Set(held));

  // Reference semantics, written independently of the module.
  function evaluateDirectly(expr: RequireExpression, held: Set<string>): boolean {
    if (expr.kind === 'scope') return held.has(expr.scope);
    const results = expr.operands.map((operand) => evaluateDirectly(operand, held));
    return expr.kind === 'and' ? results.every(Boolean) : results.some(Boolean);
  }

  // Prints with minimal parentheses and varied keyword spellings and spacing, to exercise the parser.
  const SPACES = [' ', '  ', '\t', '\n'];
  const KEYWORDS = { and: ['AND', 'and', 'And', '&&'], or: ['OR', 'or', 'oR', '||'] };
  function printLoosely(expr: RequireExpression, pick: (n: number) => string | undefined): string {
    if (expr.kind === 'scope') return expr.scope;
    return expr.operands
      .map((operand) => {
        const printed = printLoosely(operand, pick);
        return expr.kind === 'and' && operand.kind === 'or' ? `(${printed})` : printed;
      })
      .join(`${pick(0)}${pick(expr.kind === 'and' ? 1 : 2)}${pick(0)}`);
  }

  it('parse(format(tree)) gives back the tree', () => {
    fc.assert(
      fc.property(tree, (expr) => {
        expect(parseRequireExpression(formatRequireExpression(expr))).toEqual(expr);
      }),
    );
  });

  it('parsing a loosely printed tree gives back the tree', () => {
    fc.assert(
      fc.property(tree, fc.infiniteStream(fc.nat()), (expr, numbers) => {
        const iterator = numbers[Symbol.iterator]();
        const choices = [SPACES, KEYWORDS.and, KEYWORDS.or];
        const pick = (n: number) => {
          const options = choices[n]!;
          return options[(iterator.next().value as number) % options.length];
        };
        const text = printLoosely(expr, pick);
        expect(parseRequireExpression(text)).toEqual(expr);
      }),
    );
  });

  it('evaluating the parsed text agrees with evaluating the tree directly', () => {
    fc.assert(
      fc.property(tree, arbHeld, (expr, held) => {
        expect(evaluateRequire(parseRequireExpression(formatRequireExpression(expr)), held)).toBe(evaluateDirectly(expr, held));
      }),
    );
  });

  it('the missing scopes are empty exactly when satisfied, and adding them satisfies the expression', () => {
    fc.assert(
      fc.property(tree, arbHeld, (expr, held) => {
        const missing = missingScopesFor(expr, held);
        const required = requiredScopesOf(expr);
        expect(missing.length === 0).toBe(evaluateRequire(expr, held));
        expect(missing.every((name) => !held.has(name) && required.includes(name))).toBe(true);
        expect(new Set(missing).size).toBe(missing.length);
        expect(evaluateRequire(expr, new Set([...held, ...missing]))).toBe(true);
      }),
    );
  });

  it('holding every required scope satisfies the expression', () => {
    fc.assert(
      fc.property(tree, (expr) => {
        expect(evaluateRequire(expr, new Set(requiredScopesOf(expr)))).toBe(true);
      }),
    );
  });

  it('refuses arbitrary text with a validation error or parses it, never anything else', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('a', ':', 'x', ' ', '(', ')', 'A', 'N', 'D', 'O', 'R', '&', '|', '*'), maxLength: 60 }), (text) => {
        try {
          const expr = parseRequireExpression(text);
          expect(parseRequireExpression(formatRequireExpression(expr))).toEqual(expr);
        } catch (error) {
          expect(error).toBeInstanceOf(ValidationError);
        }
      }),
    );
  });
});
