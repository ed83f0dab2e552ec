import { expect } from 'vitest';
import { Client, type Cluster } from './harness.js';

/** `count` clients with `writes` acknowledged counter increments each; client → its last answer. */
export async function seedSessions(
  cluster: Cluster,
  count: number,
  writes: number,
): Promise<Map<Client, { node: string; count: number }>> {
  const sessions = new Map<Client, { node: string; count: number }>();
  await Promise.all(
    Array.from({ length: count }, async () => {
      const client = new Client(cluster.proxyUrl);
      let last = { node: '', count: 0 };
      for (let i = 0; i < writes; i++) {
        const { status, json } = await client.request('POST', '/api/counter');
        expect(status).toBe(200);
        last = { node: json.node, count: json.count };
      }
      sessions.set(client, last);
    }),
  );
  return sessions;
}

/** The node holding the most of `sessions`. */
export function busiest(sessions: Map<Client, { node: string }>): string {
  const counts = new Map<string, number>();
  for (const { node } of sessions.values()) counts.set(node, (counts.get(node) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] as string;
}
