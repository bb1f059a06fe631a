/** @module `list` and `select`: which models exist, and where to reach one. */
import type { CAC } from 'cac'
import type { CommandContext, GlobalOptions } from '../context.ts'
import { UsageError } from '../errors.ts'

interface ListOptions extends GlobalOptions {
	role?: string
}

interface SelectOptions extends GlobalOptions {
	check?: boolean
	role?: string
	require?: string | string[]
	requireVision?: boolean
}

export function registerModelCommands(cli: CAC, ctx: CommandContext): void {
	cli
		.command('list', 'List models with their backend, capabilities, roles, lock and vision status')
		.option('--role <role>', 'Only models that list this role')
		.option('--json', 'Print JSON for scripts instead of a table')
		.example((bin) => `  $ ${bin} list\n  $ ${bin} list --role caption --json`)
		.action(async (options: ListOptions) => {
			const role = typeof options.role === 'string' ? options.role : undefined
			const deps = await ctx.deps(options)
			const { listModels } = await import('../../core/service.ts')
			const models = listModels(deps.store.load(), { role })
			ctx.out.emit(models, options.json, (m) => ctx.out.models(m, role))
		})

	cli
		.command('select [name]', 'Resolve a model (name, alias or --role) to its endpoint, backend and internal id')
		.option('--role <role>', 'Pick the best model for a role instead of naming one')
		.option('--require <capability>', 'Required capability, repeatable: vision, tools, embedding, ...')
		.option('--require-vision', 'Same as --require vision')
		.option('--check', 'Also check the backend is up and serves the model (exit 1 if not)')
		.option('--json', 'Print JSON for scripts')
		.example(
			(bin) =>
				`  $ ${bin} select qwen2.5-vl-7b-awq --require-vision\n  $ ${bin} select --role caption --require tools --json`
		)
		.action(async (name: string | undefined, options: SelectOptions) => {
			const role = typeof options.role === 'string' ? options.role : undefined
			if ((name === undefined) === (role === undefined)) throw new UsageError('give a model NAME or --role ROLE (exactly one)')
			const require = [options.require ?? []].flat().map(String)
			if (options.requireVision) require.push('vision')
			const deps = await ctx.deps(options)
			const { selectReady } = await import('../../core/service.ts')
			const chosen = await selectReady(deps, {
				name: name === undefined ? undefined : String(name),
				role,
				require,
				checkBackend: Boolean(options.check)
			})
			ctx.out.emit(chosen, options.json, (c) => ctx.out.selection(c))
		})
}
