/**
 * The overlay's nftables tables (plan.ts renders them): one in the node's namespace, one per
 * router namespace. A table is applied when it differs from what was applied last, or when it
 * is gone (someone flushed the ruleset).
 */
import type { Tools } from '../exec'
import type { OverlayNames } from '../names'
import { replaceTable } from './plan'

type NftTables = { nftables: Array<{ table?: { family: string; name: string } }> }

export function createTables(o: { names: OverlayNames; tools: Tools }) {
  const { names, tools } = o
  /** Last rule set applied per namespace ('' = the node's). */
  const applied = new Map<string, string>()
  const nft = (ns: string | null, args: string[], input?: string) => (ns ? tools.run('ip', ['netns', 'exec', ns, 'nft', ...args], input) : tools.run('nft', args, input))
  /** Whether the table exists in the namespace (null: the node's). */
  async function has(ns: string | null, family: string, name: string): Promise<boolean> {
    const present = JSON.parse((await nft(ns, ['-j', 'list', 'tables'])) || '{"nftables":[]}') as NftTables
    return present.nftables.some((e) => e.table?.family === family && e.table.name === name)
  }

  return {
    /** Applies a table in a namespace (null: the node's) unless it is there as last applied. */
    async sync(ns: string | null, family: string, name: string, body: string): Promise<void> {
      const key = ns ?? ''
      const exists = await has(ns, family, name)
      if (exists && applied.get(key) === body) return
      await nft(ns, ['-f', '-'], replaceTable(family, name, body))
      applied.set(key, body)
    },

    /** Removes the node's table (no network left on this node). */
    async dropNode(): Promise<void> {
      if (await has(null, 'inet', names.nodeTable)) await nft(null, ['delete', 'table', 'inet', names.nodeTable])
      applied.delete('')
    },

    /** A namespace was deleted, and its table with it. */
    forget: (ns: string) => void applied.delete(ns),
  }
}
