import type { Command } from 'commander'

/** Every command path with its subcommands and options, read from the program itself. */
function tree(cmd: Command, prefix: string[] = []): { path: string[]; words: string[] }[] {
  const words = [...cmd.commands.flatMap((c) => [c.name(), ...c.aliases()]), ...cmd.options.flatMap((o) => [o.long, o.short].filter((x): x is string => !!x))]
  return [{ path: prefix, words }, ...cmd.commands.flatMap((c) => tree(c, [...prefix, c.name()]))]
}

/**
 * Shell completion scripts (bash, zsh through bashcompinit) generated from the command tree,
 * so they never fall behind the commands: `source <(alveary completion bash)`.
 */
export function completionScript(program: Command, shell: 'bash' | 'zsh'): string {
  const globals = program.options.flatMap((o) => [o.long, o.short].filter((x): x is string => !!x))
  const cases = tree(program)
    .map(({ path, words }) => `    "${path.join(' ')}") words="${[...words, ...(path.length ? globals : [])].join(' ')}" ;;`)
    .join('\n')
  const bash = `_alveary() {
  local cur path="" w words
  cur="\${COMP_WORDS[COMP_CWORD]}"
  for w in "\${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
    case "$w" in -*) ;; *) if [ -z "$path" ]; then path="$w"; else path="$path $w"; fi ;; esac
  done
  while :; do
    case "$path" in
${cases}
    *) path="\${path% *}"; [ "$path" = "\${path% *}" ] && [ -n "$path" ] && path="" || continue ;;
    esac
    break
  done
  COMPREPLY=( $(compgen -W "$words" -- "$cur") )
}
complete -o default -F _alveary alveary
`
  return shell === 'zsh' ? `autoload -U +X bashcompinit && bashcompinit\n${bash}` : bash
}
