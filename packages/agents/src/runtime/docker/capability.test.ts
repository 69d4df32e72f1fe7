import { describe, expect, it } from 'vitest'
import { containerCapability } from './capability'

describe('containerCapability', () => {
  it('the engine maps users itself: userns-remap or rootless', () => {
    expect(containerCapability('docker', ['name=apparmor', 'name=seccomp,profile=builtin', 'name=userns'])).toEqual({ engine: 'docker', userns: true, usernsMode: 'engine', rootless: false })
    expect(containerCapability('podman', ['name=seccomp,profile=default', 'name=rootless'])).toEqual({ engine: 'podman', userns: true, usernsMode: 'engine', rootless: true })
    // A word in a profile's name is no option.
    expect(containerCapability('docker', ['name=seccomp,profile=userns-like'])).toMatchObject({ userns: false })
    expect(containerCapability('docker', [])).toEqual({ engine: 'docker', userns: false, rootless: false, reason: expect.stringContaining('enable its daemon-wide userns-remap') })
  })

  it('rootful Podman: a user namespace per container where the engine gave one when asked, else off with its answer', () => {
    expect(containerCapability('podman', ['name=seccomp,profile=default'], { ok: true })).toEqual({ engine: 'podman', userns: true, usernsMode: 'auto', rootless: false })
    const off = containerCapability('podman', ['name=seccomp,profile=default'], { ok: false, reason: 'container create: creating container storage: could not find enough available IDs' })
    expect(off).toEqual({ engine: 'podman', userns: false, rootless: false, reason: expect.stringMatching(/^Podman refused a user namespace: .*could not find enough available IDs \(give user "containers" a range in \/etc\/subuid and \/etc\/subgid\)$/) })
    // Another refusal is passed on as it is, within the protocol's 300 characters.
    const long = containerCapability('podman', [], { ok: false, reason: 'x'.repeat(400) })
    expect(long.reason).toHaveLength(300)
    expect(long.reason).not.toContain('subuid')
  })
})
