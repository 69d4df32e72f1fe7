/**
 * Volume sizes are measured, not enforced: agents report what each volume uses (du, every
 * minute) and the platform marks the ones over the size their app asked for. Enforcing would
 * need a filesystem with project quotas or a loop-mounted image per volume (mkfs, a mount per
 * instance, root), which plain data folders and shared storage do not give. Pure.
 */
const MiB = 1024 * 1024

export const overSize = (usedBytes: number | null, sizeMb: number): boolean => usedBytes !== null && usedBytes > sizeMb * MiB

/** Volumes that went over their size with this measurement (under, or not measured, before): each is told once per crossing. */
export function newlyOverSize<V extends { id: string; sizeMb: number }>(volumes: readonly V[], before: ReadonlyMap<string, number>, now: ReadonlyMap<string, number>): V[] {
  return volumes.filter((v) => overSize(now.get(v.id) ?? null, v.sizeMb) && !overSize(before.get(v.id) ?? null, v.sizeMb))
}
