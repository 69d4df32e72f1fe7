import { readFileSync } from 'node:fs'
import { parse } from 'yaml'
import type { z } from 'zod'
import { CliError, EXIT } from './errors'

/** Reads a YAML or JSON file ("-": stdin) and checks it against the API's own schema, with the field paths of what is wrong. */
export function readSpecFile<T extends z.ZodType>(file: string, schema: T): z.infer<T> {
  let text: string
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8')
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`, EXIT.usage)
  }
  let doc: unknown
  try {
    doc = parse(text)
  } catch (err) {
    throw new CliError(`${file} is not YAML or JSON: ${(err as Error).message}`, EXIT.usage)
  }
  const parsed = schema.safeParse(doc)
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(file)'}: ${i.message}`)
    throw new CliError([`${file} is not valid:`, ...lines].join('\n'), EXIT.usage)
  }
  return parsed.data
}
