/**
 * The Docker volume that holds a user's vfolder on every node: one name per instance, owner and
 * folder, so a node creates or finds the same volume for every session that mounts it, and two
 * deployments sharing an engine never share a user's data.
 */
export function vfolderVolumeName(instance: string, ownerId: string, name: string): string {
  return `sf-${instance}-vf-${ownerId}-${name}`;
}

/** Where a vfolder appears in every kernel. */
export function vfolderMountPath(name: string): string {
  return `/home/work/${name}`;
}
