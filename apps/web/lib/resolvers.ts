import { zodResolver } from '@hookform/resolvers/zod'
import type { FieldValues, Resolver } from 'react-hook-form'
import type * as z4 from 'zod/v4/core'

/**
 * zodResolver for forms whose optional text fields may be left empty: '' becomes
 * undefined before the schema sees it (the API schemas treat absent and empty differently).
 */
export function blankAsUndefined<T extends z4.$ZodType>(schema: T, optional: string[]): Resolver<FieldValues, unknown, z4.output<T>> {
  const inner = zodResolver(schema as never) as unknown as Resolver<FieldValues, unknown, z4.output<T>>
  return (values, ctx, options) => {
    const v: FieldValues = { ...values }
    for (const k of optional) if (typeof v[k] === 'string' && v[k].trim() === '') v[k] = undefined
    return inner(v, ctx, options)
  }
}
