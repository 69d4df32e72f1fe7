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

  return {
    /** Applies a table in a namespace (null: the node's) unless it is there as last applied. */
    async sync(ns: string | null, family: string, name: string, body: string): Promise<void> {
      const key = ns ?? ''
      const nft = (args: string[], input?: string) => (ns ? tools.run('ip', ['netns', 'exec', ns, 'nft', ...args], input) : tools.run('nft', args, input))
      const present = JSON.parse((await nft(['-j', 'list', 'tables'])) || '{"nftables":[]}') as NftTables
      const exists = present.nftables.some((e) => e.table?.family === family && e.table.name === name)
      if (exists && applied.get(key) === body) return
      await nft(['-f', '-'], replaceTable(family, name, body))
      applied.set(key, body)
    },

    /** Removes the node's table (no network left on this node). */
    async dropNode(): Promise<void> {
      const present = JSON.parse((await tools.run('nft', ['-j', 'list', 'tables'])) || '{"nftables":[]}') as NftTables
      if (present.nftables.some((e) => e.table?.family === 'inet' && e.table.name === names.nodeTable)) await tools.run('nft', ['delete', 'table', 'inet', names.nodeTable])
      applied.delete('')
    },

    /** A namespace was deleted, and its table with it. */
    forget: (ns: string) => void applied.delete(ns),
  }
}
