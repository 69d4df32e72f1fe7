import { describe, expect, it } from 'vitest'
import { ZAppSpec } from '../schemas/app'
import { templateHash } from './revisions'

describe('templateHash', () => {
  it('is the same for a revision stored before pidsMax and readOnlyRootfs existed and one at their defaults (no rollout on upgrade)', () => {
    const spec = ZAppSpec.parse({ command: 'node', cpuMillis: 100, memoryMb: 64 })
    // The hash revisions of the previous release stored for this spec (its template had neither field).
    expect(templateHash(spec)).toBe(templateHash({ ...spec, pidsMax: undefined, readOnlyRootfs: undefined } as never))
    expect(templateHash({ ...spec, pidsMax: 100 })).not.toBe(templateHash(spec))
    expect(templateHash({ ...spec, readOnlyRootfs: true })).not.toBe(templateHash(spec))
  })
})
