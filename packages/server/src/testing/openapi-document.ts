// Reading the OpenAPI document in tests: named schemas and shared responses
// are `$ref`s, which a test follows to reach what it checks.

/** Follows local `$ref`s (`#/components/…`) until it reaches an object that is not a reference. */
export function dereference(document: Record<string, any>, node: any): any {
  let current = node;
  for (let hops = 0; current && typeof current.$ref === 'string'; hops++) {
    if (hops > 20 || !current.$ref.startsWith('#/')) throw new Error(`cannot follow ${current.$ref}`);
    const target = current.$ref
      .slice(2)
      .split('/')
      .reduce((at: any, part: string) => at?.[part.replaceAll('~1', '/').replaceAll('~0', '~')], document);
    if (target === undefined) throw new Error(`${current.$ref} points at nothing`);
    current = target;
  }
  return current;
}

/** Every `$ref` anywhere under a node. */
export function referencesIn(node: unknown, found: string[] = []): string[] {
  if (Array.isArray(node)) for (const item of node) referencesIn(item, found);
  else if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') found.push(value);
      else referencesIn(value, found);
    }
  }
  return found;
}
