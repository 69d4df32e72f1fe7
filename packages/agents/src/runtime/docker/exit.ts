/** How a container ended, in the words the supervisor reports. */
import { constants as osConstants } from 'node:os'
import type { ExitInfo } from '../types'

const signalNames = new Map<number, NodeJS.Signals>(Object.entries(osConstants.signals).map(([k, v]) => [v as number, k as NodeJS.Signals]))

interface ContainerState {
  Running?: boolean
  ExitCode?: number
  OOMKilled?: boolean
  Error?: string
}

export function exitInfoOf(state: ContainerState, memoryBytes?: number): ExitInfo {
  const code = typeof state.ExitCode === 'number' ? state.ExitCode : null
  const extra = state.Error ? `: ${state.Error}` : ''
  if (state.OOMKilled) {
    const limit = memoryBytes ? ` (memory limit ${Math.round(memoryBytes / 1024 / 1024)} MiB)` : ''
    return { exitCode: code, signal: 'SIGKILL', oomKilled: true, message: `killed: out of memory${limit}${extra}` }
  }
  const signal = code !== null && code > 128 ? (signalNames.get(code - 128) ?? null) : null
  // Podman on cgroup v1 does not report OOM kills: a SIGKILL under a memory limit may be one.
  const hint = signal === 'SIGKILL' && memoryBytes ? ` (out of memory? memory limit ${Math.round(memoryBytes / 1024 / 1024)} MiB)` : ''
  if (signal) return { exitCode: code, signal, message: `terminated by ${signal}${hint}${extra}` }
  return { exitCode: code, signal: null, message: `exited with code ${code ?? 'unknown'}${extra}` }
}

