import { z } from 'zod'
import { ZMountPath, ZVolumeDriver } from '../protocol/volume'
import { boundedRecord, ZFlag } from './bounds'

/** Shared by the console's deploy form, the API and the agent protocol. */
export const ZName = z
  .string()
  .min(1, 'Required')
  .max(40, 'At most 40 characters')
  .regex(/^[a-z]([a-z0-9-]*[a-z0-9])?$/, 'Lowercase letters, digits and dashes; start with a letter')

export const ZDriver = z.enum(['process', 'docker'])
export const ZRestartPolicy = z.enum(['always', 'on_failure', 'never'])

export const ZEnv = boundedRecord(
  z.string().max(256, 'Env names: at most 256 characters').regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'Env names are letters, digits and _'),
  z.string().max(4096),
  100,
  'At most 100 variables',
)

/**
 * A health check the agent runs next to the instance, against one of its ports. Readiness
 * gates load-balancer membership and rollouts; liveness restarts a hung instance.
 */
export const ZProbe = z
  .object({
    type: z.enum(['http', 'tcp']),
    /** HTTP only: the path requested and the status that counts as healthy. */
    path: z.string().max(256).regex(/^\/[\x21-\x7e]*$/, 'A path starts with / and has no spaces').default('/'),
    expectStatus: z.number().int().min(100).max(599).default(200),
    intervalSeconds: z.number().int().min(1).max(300).default(5),
    timeoutSeconds: z.number().int().min(1).max(60).default(2),
    /** Consecutive results needed to turn healthy / unhealthy. */
    successThreshold: z.number().int().min(1).max(10).default(1),
    failureThreshold: z.number().int().min(1).max(10).default(3),
    /** No check before this long after the start (slow starters). */
    initialDelaySeconds: z.number().int().min(0).max(600).default(0),
  })
  .refine((p) => p.timeoutSeconds <= p.intervalSeconds, { message: 'The timeout cannot be longer than the interval', path: ['timeoutSeconds'] })
export type TProbe = z.infer<typeof ZProbe>

export const ZPortSpec = z.object({
  name: z.string().max(15, 'Port names are lowercase, up to 15 characters').regex(/^[a-z][a-z0-9-]{0,14}$/, 'Port names are lowercase, up to 15 characters'),
  containerPort: z.number().int().min(1).max(65535).optional(),
  readiness: ZProbe.optional(),
  liveness: ZProbe.optional(),
})

/** A volume every instance of the app gets its own copy of (like a StatefulSet's claim template). */
export const ZVolumeSpec = z.object({
  name: z.string().max(31, 'At most 31 characters').regex(/^[a-z][a-z0-9-]{0,30}$/, 'Lowercase letters, digits and dashes, up to 31 characters'),
  driver: ZVolumeDriver.default('local'),
  sizeMb: z.number().int('A whole number').min(1, 'At least 1 MiB').max(1_048_576, 'At most 1 TiB'),
  mountPath: ZMountPath,
})
export type TVolumeSpec = z.infer<typeof ZVolumeSpec>

// Docker reference grammar, simplified: [registry/]path[:tag][@digest]
const IMAGE_RE = /^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$/

/** Seconds a new instance must run, ready, before a rollout counts it (ZAppSpec.minReadySeconds; the console's forms check it too). */
export const ZMinReadySeconds = z.number().int('A whole number').min(0, 'At least 0').max(600, 'At most 10 minutes')

export const ZAppSpec = z
  .object({
    driver: ZDriver.default('process'),
    image: z.string().max(255).regex(IMAGE_RE, 'Not a valid image reference').optional(),
    command: z.string().min(1).max(1024).optional(),
    args: z.array(z.string().max(4096)).max(64).default([]),
    env: ZEnv.default({}),
    ports: z
      .array(ZPortSpec)
      .max(8)
      .default([{ name: 'http' }])
      .refine((ps) => new Set(ps.map((p) => p.name)).size === ps.length, 'Port names must be unique'),
    cpuMillis: z.number().int().min(10, 'At least 10 millicores').max(64_000),
    memoryMb: z.number().int().min(4, 'At least 4 MiB').max(262_144),
    /**
     * Processes and threads an instance may have (a fork bomb stops there); null: the node's
     * default, which is also the most a node gives (its --sandbox-pids-max).
     */
    pidsMax: z.number().int('A whole number').min(8, 'At least 8').max(65_536, 'At most 65536').nullable().default(null),
    /** Docker apps: the image's filesystem is read-only, /tmp a tmpfs (process apps always run on a read-only root). */
    readOnlyRootfs: ZFlag.default(false),
    restartPolicy: ZRestartPolicy.default('always'),
    stopGraceSeconds: z.number().int().min(0).max(300).default(10),
    /** Scheduling: labels a node must carry, replica anti-affinity, placement, priority. */
    nodeSelector: boundedRecord(
      z.string().min(1, 'Label names cannot be empty').max(63, 'Label names: at most 63 characters'),
      z.string().max(63, 'Label values: at most 63 characters'),
      16,
      'At most 16 labels',
    ).default({}),
    spread: z.enum(['none', 'soft', 'hard']).default('soft'),
    placementStrategy: z.enum(['spread', 'binpack']).nullable().default(null),
    priorityClass: z.enum(['low', 'normal', 'high', 'critical']).default('normal'),
    /** How many replicas a drain or a rollout may take down at once. */
    maxUnavailable: z.number().int('A whole number').min(1, 'At least 1').max(1000, 'At most 1000').default(1),
    /** Rollouts: instances above the replica count while replacing, and how long new ones may take to be ready. */
    maxSurge: z.number().int('A whole number').min(0, 'At least 0').max(1000, 'At most 1000').default(1),
    progressDeadlineSeconds: z.number().int().min(5, 'At least 5 seconds').max(3600, 'At most an hour').default(120),
    /**
     * How long a new instance must run, ready, before a rollout counts it available (one that
     * crashes soon after starting never replaces an old one); null: see minReadySecondsOf.
     */
    minReadySeconds: ZMinReadySeconds.nullable().default(null),
    volumes: z
      .array(ZVolumeSpec)
      .max(8, 'At most 8 volumes')
      .default([])
      .refine((vs) => new Set(vs.map((v) => v.name)).size === vs.length, 'Volume names must be unique')
      .refine((vs) => new Set(vs.map((v) => v.mountPath)).size === vs.length, 'Mount paths must be unique'),
    /** Stateless apps: the node stops the instances by itself when it loses the control plane (volumes imply it). */
    stopAfterDisconnect: ZFlag.default(false),
  })
  .superRefine((spec, ctx) => {
    if (spec.driver === 'process' && !spec.command) ctx.addIssue({ code: 'custom', path: ['command'], message: 'A process app needs a command' })
    if (spec.driver === 'docker' && !spec.image) ctx.addIssue({ code: 'custom', path: ['image'], message: 'A docker app needs an image' })
  })
export type TAppSpec = z.infer<typeof ZAppSpec>

/** Without a readiness check, "running" is all an instance says: it must last this long to count. */
export const DEFAULT_MIN_READY_SECONDS = 3

/** The minimum ready time a rollout applies: the app's own, else 0 with a readiness check and DEFAULT_MIN_READY_SECONDS without. */
export const minReadySecondsOf = (spec: { minReadySeconds?: number | null; ports: readonly { readiness?: unknown }[] }): number =>
  spec.minReadySeconds ?? (spec.ports.some((p) => p.readiness) ? 0 : DEFAULT_MIN_READY_SECONDS)

/** What an instance runs: the part of the spec a revision stores and a rollout replaces. */
export const TEMPLATE_FIELDS = ['driver', 'image', 'command', 'args', 'env', 'ports', 'cpuMillis', 'memoryMb', 'pidsMax', 'readOnlyRootfs', 'restartPolicy', 'stopGraceSeconds'] as const
/** Template fields added after revisions were first stored: absent in older ones, left out of the template at these defaults. */
const LATER_FIELDS = { pidsMax: null, readOnlyRootfs: false } as const
export type TInstanceTemplate = Omit<Pick<TAppSpec, (typeof TEMPLATE_FIELDS)[number]>, keyof typeof LATER_FIELDS> & Partial<Pick<TAppSpec, keyof typeof LATER_FIELDS>>
/** At their defaults the later fields are left out, so the template (and its hash) of an older revision is unchanged. */
export const templateOf = (spec: TAppSpec): TInstanceTemplate =>
  Object.fromEntries(
    TEMPLATE_FIELDS.flatMap((k) => {
      const later = k in LATER_FIELDS ? LATER_FIELDS[k as keyof typeof LATER_FIELDS] : undefined
      return later !== undefined && (spec[k] ?? later) === later ? [] : [[k, spec[k] ?? null]]
    }),
  ) as TInstanceTemplate

export const ZReplicas = z.number().int().min(0, 'At least 0').max(1000, 'At most 1000')

export const ZCreateAppInput = z.object({
  name: ZName,
  replicas: ZReplicas,
  spec: ZAppSpec,
  /** Tenant network by name; null: host networking; omitted: the tenant's default network where nodes run the overlay. */
  network: ZName.nullable().optional(),
})
export type TCreateAppInput = z.infer<typeof ZCreateAppInput>

/** A new spec for an app: a new revision, rolled out when the instance template changed. */
export const ZUpdateAppInput = z.object({ spec: ZAppSpec })
export type TUpdateAppInput = z.infer<typeof ZUpdateAppInput>
