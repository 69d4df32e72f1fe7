export { createAgent, AgentStartError, AGENT_VERSION, type Agent, type AgentExit, type AgentOptions } from './agent'
export { ZAgentConfig, parseConfig, normalizeServerUrl, agentEndpoint, parseLabels, USAGE, type AgentConfig, type AgentConfigInput } from './config'
export { reconcile, specHash, stableStringify, type Action, type KnownInstance } from './reconciler'
export { backoffDelay, createConnection, type Backoff, type Connection } from './connection'
export { createSupervisor, DEFAULT_RESTART_BACKOFF, type RestartBackoff, type Supervisor, type InstanceMetric } from './supervisor'
export { createProcessDriver, buildEnv, portEnvName, type ProcessDriver, type ProcessHandle } from './drivers/process'
export {
  createDockerDriver,
  containerConfig,
  defaultDockerHost,
  parseDockerHost,
  probeDocker,
  LABELS as DOCKER_LABELS,
  type DockerDriver,
  type DockerProbe,
} from './drivers/docker'
export { SpawnError, type DriverName, type ExitInfo, type InstanceHandle, type LogCursor, type RuntimeDriver } from './drivers/types'
export { createLogShipper, type LogShipper, type LogEntry } from './logs'
export { createStateStore, type PersistedInstance, type StateStore } from './state-store'
export { createCredentialStore, type StoredCredential } from './credentials'
export { createUsageMeter, type Usage } from './usage'
