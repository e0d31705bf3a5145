// A Kysely plugin that records the kind of every statement sent through it
// (`SelectQueryNode`, `UpdateQueryNode`…), for tests that prove how many
// round trips or writes something costs.
import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';

export class StatementCounter implements KyselyPlugin {
  statements: string[] = [];

  get count(): number {
    return this.statements.length;
  }

  countOf(kind: string): number {
    return this.statements.filter((each) => each === kind).length;
  }

  reset(): void {
    this.statements = [];
  }

  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    this.statements.push(args.node.kind);
    return args.node;
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result;
  }
}
