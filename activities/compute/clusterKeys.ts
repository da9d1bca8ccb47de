// TEMPORARY stub (lead's branch): the node engineer's module replaces it at merge.
export interface ClusterKeyActivities {
  ensureClusterKeyPair(input: { sessionId: string; ownerId: string }): Promise<{ keyId: string }>;
}
