/**
 * The agent protocol: JSON frames over the /agent WebSocket. This module is imported by
 * the node agent, so it depends on zod and the shared schemas only, never on server code.
 * One file per concern; a new capability adds its own file and exports it here.
 */
export * from './frames'
export * from './limits'
export * from './node'
export * from './instance'
export * from './agent-messages'
export * from './server-messages'
export * from './volume'
export * from './fence'
export * from './lb'
export * from './network'
export * from './sandbox'
