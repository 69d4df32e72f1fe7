/**
 * Load balancers on the wire: what a load-balancing node serves (part of its desired state)
 * and what it reports back. Backends are listed with every server and its state, so the
 * agent can change membership through the data plane's runtime API without reloads.
 */
import { z } from 'zod'
import { zText } from './limits'

/** The data plane an agent offers (advertised in hello's capabilities). */
export const ZLbDriver = z.enum(['haproxy', 'builtin'])
export type TLbDriver = z.infer<typeof ZLbDriver>

export const ZLbServer = z.object({
  /** The instance id. */
  id: z.string().uuid(),
  address: z.string().min(1).max(255),
  port: z.number().int().min(1).max(65535),
  weight: z.number().int().min(0).max(256),
  /** ready: takes traffic; drain: keeps its connections and sticky clients, gets no new ones; down: none. */
  state: z.enum(['ready', 'drain', 'down']),
  /**
   * Set when `address` is the instance's IP on this tenant network (the node joined it, see
   * the network's `lbAddress`): reach it from inside that network. Absent: `address` is a node
   * address and `port` its host port.
   */
  networkId: z.string().uuid().optional(),
})
export type TLbServer = z.infer<typeof ZLbServer>

export const ZLbBackend = z.object({
  /** Stable within the load balancer (listener port and rule index). */
  name: z.string().regex(/^[a-z0-9_-]{1,64}$/),
  servers: z.array(ZLbServer).max(4000),
})
export type TLbBackend = z.infer<typeof ZLbBackend>

export const ZLbRoute = z.object({
  host: z.string().max(253).nullable(),
  pathPrefix: z.string().max(200).nullable(),
  backend: z.string().regex(/^[a-z0-9_-]{1,64}$/),
})

export const ZDesiredLb = z.object({
  id: z.string().uuid(),
  name: z.string().max(64),
  algorithm: z.enum(['roundrobin', 'leastconn']),
  stickySeconds: z.number().int().min(1).max(86_400).nullable(),
  drainSeconds: z.number().int().min(0).max(3600),
  /** Send a GET, HEAD or OPTIONS request again to another instance when one closed the connection without answering (absent: no). */
  retryUnanswered: z.boolean().optional(),
  listeners: z
    .array(z.object({ port: z.number().int().min(1).max(65535), protocol: z.enum(['http', 'tcp']), routes: z.array(ZLbRoute).max(32) }))
    .max(8),
  backends: z.array(ZLbBackend).max(256),
})
export type TDesiredLb = z.infer<typeof ZDesiredLb>

/** One load balancer as the node serves it. */
export const ZLbReport = z.object({
  id: z.string().uuid(),
  state: z.enum(['active', 'error']),
  message: zText(500).nullable(),
})
export type TLbReport = z.infer<typeof ZLbReport>

/** Traffic of one server (instance) of a load balancer on the reporting node. */
export const ZLbServerStat = z.object({
  lbId: z.string().uuid(),
  instanceId: z.string().uuid(),
  /** Open connections (TCP) or requests in flight (HTTP) now. */
  current: z.number().int().min(0).max(10_000_000),
  /** Connections or requests per second since the previous sample. */
  perSecond: z.number().min(0).max(100_000_000),
})
export type TLbServerStat = z.infer<typeof ZLbServerStat>
