/**
 * After each test file (after its own afterAll): anything still on the machine that carries the
 * network prefix of an agent configuration the file made (namespaces, links, nftables tables,
 * /etc/netns folders, sandbox cgroups) fails the file, named, and is removed.
 */
import { afterAll } from 'vitest'
import { configuredPrefixes } from './helpers'
import { machineLeftovers } from './netns'

afterAll(() => {
  const left = [...configuredPrefixes].flatMap((prefix) => machineLeftovers(prefix))
  configuredPrefixes.clear()
  for (const x of left) x.remove()
  if (left.length) throw new Error(`left on the machine by this file's agents (removed now): ${left.map((x) => x.what).join('; ')}`)
})
