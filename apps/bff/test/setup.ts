/**
 * After each test file (after its own afterAll): the in-process agents it started are stopped
 * and their nodes retired; anything still on the machine then (instance processes, namespaces,
 * links, nftables tables, cgroups of the node's prefix) fails the file, named, and is removed.
 */
import { afterAll } from 'vitest'
import { retireInProcessAgents } from './harness'

afterAll(async () => {
  const left = await retireInProcessAgents()
  if (left.length) throw new Error(`in-process agents left behind (removed now): ${left.join('; ')}`)
})
