import { z } from 'zod'
import { appRouter } from '../src/router'

/** A JSON Schema (draft 2020-12) node, as zod's toJSONSchema writes it. */
export interface JsonSchema {
  type?: string | string[]
  properties?: Record<string, JsonSchema>
  required?: string[]
  additionalProperties?: JsonSchema | boolean
  propertyNames?: JsonSchema
  items?: JsonSchema
  anyOf?: JsonSchema[]
  oneOf?: JsonSchema[]
  allOf?: JsonSchema[]
  enum?: unknown[]
  const?: unknown
  format?: string
  pattern?: string
  minLength?: number
  maxLength?: number
  minimum?: number
  maximum?: number
  exclusiveMinimum?: number
  exclusiveMaximum?: number
  minItems?: number
  maxItems?: number
  maxProperties?: number
  default?: unknown
}

export interface ProcedureInfo {
  path: string
  type: 'query' | 'mutation' | 'subscription'
  /** The procedure's whole input (its input parsers merged), or null when it takes none. */
  input: JsonSchema | null
}

/** Every procedure of the router, read from the router itself: a new procedure is included without anyone listing it. */
export function routerProcedures(): ProcedureInfo[] {
  const procs = appRouter._def.procedures as unknown as Record<string, { _def: { type: ProcedureInfo['type']; inputs: z.ZodType[] } }>
  return Object.entries(procs).map(([path, p]) => {
    const parts = p._def.inputs.map((i) => z.toJSONSchema(i, { io: 'input', unrepresentable: 'any' }) as JsonSchema)
    const input = parts.length
      ? parts.reduce<JsonSchema>(
          (acc, s) => ({ ...acc, ...s, properties: { ...acc.properties, ...s.properties }, required: [...(acc.required ?? []), ...(s.required ?? [])] }),
          { type: 'object', properties: {}, required: [] },
        )
      : null
    return { path, type: p._def.type, input }
  })
}
