import { z } from 'zod'
import { ZName } from './app'

/** Where a rule sends traffic: one port of one app, with a share of the traffic. */
export const ZLbTarget = z.object({
  appId: z.string().uuid('Pick an app'),
  port: z.string().max(15, 'A port name of the app').regex(/^[a-z][a-z0-9-]{0,14}$/, 'A port name of the app'),
  /** Relative share among the rule's targets (0 = no new traffic). */
  weight: z.number().int('A whole number').min(0, 'At least 0').max(256, 'At most 256').default(100),
})
export type TLbTarget = z.infer<typeof ZLbTarget>

const HOST_RE = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/

/** HTTP listeners pick the first rule whose host and path prefix match; TCP listeners have one rule without either. */
export const ZLbRule = z.object({
  host: z.string().max(253).regex(HOST_RE, 'A host name such as shop.example.com or *.example.com').nullable().default(null),
  pathPrefix: z.string().max(200).regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/, 'A path prefix starts with /').nullable().default(null),
  targets: z.array(ZLbTarget).min(1, 'A rule needs a target').max(8, 'At most 8 targets'),
})
export type TLbRule = z.infer<typeof ZLbRule>

export const LB_PORT_MIN = 1024
export const ZLbListener = z
  .object({
    protocol: z.enum(['http', 'tcp']),
    /** Absent: the platform picks a free port. */
    port: z.number().int().min(LB_PORT_MIN, `At least ${LB_PORT_MIN}`).max(65535).optional(),
    rules: z.array(ZLbRule).min(1, 'A listener needs a rule').max(32, 'At most 32 rules'),
  })
  .superRefine((l, ctx) => {
    if (l.protocol === 'tcp') {
      if (l.rules.length !== 1) ctx.addIssue({ code: 'custom', path: ['rules'], message: 'A TCP listener has exactly one rule' })
      else if (l.rules[0]!.host || l.rules[0]!.pathPrefix)
        ctx.addIssue({ code: 'custom', path: ['rules', 0], message: 'TCP listeners cannot route by host or path' })
    }
  })
export type TLbListener = z.infer<typeof ZLbListener>

export const ZLbSettings = z
  .object({
    algorithm: z.enum(['roundrobin', 'leastconn']).default('roundrobin'),
    /** Cookie stickiness for HTTP listeners, in seconds; null: none. */
    stickySeconds: z.number().int('A whole number').min(1, 'At least 1 second').max(86_400, 'At most 86,400 seconds (a day)').nullable().default(null),
    /** How long an instance that leaves keeps serving its open connections. */
    drainSeconds: z.number().int('A whole number').min(0, 'At least 0').max(3600, 'At most an hour').default(10),
    /**
     * HTTP: send a GET, HEAD or OPTIONS request again to another instance when one closed the
     * connection without answering (a keep-alive race, a crash). Off by default, as in HAProxy:
     * it costs HAProxy a copy of every request.
     */
    retryUnanswered: z.boolean().default(false),
    listeners: z.array(ZLbListener).min(1, 'A load balancer needs a listener').max(8, 'At most 8 listeners'),
  })
  .superRefine((s, ctx) => {
    const ports = s.listeners.flatMap((l) => (l.port ? [l.port] : []))
    if (new Set(ports).size !== ports.length) ctx.addIssue({ code: 'custom', path: ['listeners'], message: 'Two listeners use the same port' })
  })
export type TLbSettings = z.infer<typeof ZLbSettings>

export const ZLbName = z.object({ name: ZName })
export const ZCreateLbInput = ZLbName.and(ZLbSettings)
export type TCreateLbInput = z.infer<typeof ZCreateLbInput>
