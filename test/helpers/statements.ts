import type { Pool, QueryConfig } from 'pg';

export interface Statement {
  text: string;
  values?: unknown[];
}

/** The real pool, with every statement sent through `query` written down in `statements`. */
export function recordingPool(pool: Pool, statements: Statement[]): Pool {
  const query = (config: string | QueryConfig, values?: unknown[]) => {
    statements.push(typeof config === 'string' ? { text: config, values } : { text: config.text, values: config.values ?? values });
    return pool.query(config as string, values);
  };
  return new Proxy(pool, {
    get(target, property) {
      if (property === 'query') return query;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

export interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

/** Every node of the plan PostgreSQL would run for the statement (EXPLAIN, not run). */
export async function planNodes(pool: Pool, statement: Statement): Promise<PlanNode[]> {
  const { rows: [row] } = await pool.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`EXPLAIN (FORMAT JSON) ${statement.text}`, statement.values);
  const nodesOf = (node: PlanNode): PlanNode[] => [node, ...(node.Plans ?? []).flatMap(nodesOf)];
  return nodesOf(row!['QUERY PLAN'][0].Plan);
}
