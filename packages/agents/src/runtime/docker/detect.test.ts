import { describe, expect, it } from 'vitest'
import { containerCapability } from './detect'

describe('container capability from the engine’s security options', () => {
  it('userns-remap, rootless, or neither', () => {
    expect(containerCapability('docker', ['name=apparmor', 'name=seccomp,profile=builtin', 'name=userns'])).toEqual({ engine: 'docker', userns: true, rootless: false })
    expect(containerCapability('podman', ['name=seccomp,profile=default', 'name=rootless'])).toEqual({ engine: 'podman', userns: true, rootless: true })
    expect(containerCapability('podman', ['name=seccomp,profile=default'])).toEqual({ engine: 'podman', userns: false, rootless: false })
    // A profile or option that merely contains the word is not the option.
    expect(containerCapability('docker', ['name=seccomp,profile=userns-like'])).toEqual({ engine: 'docker', userns: false, rootless: false })
    expect(containerCapability('docker', [])).toEqual({ engine: 'docker', userns: false, rootless: false })
  })
})
