/** @module `verify`, `lock` and `unlock`: the version lock on a model's files. */
import type { CAC } from 'cac'
import type { CommandContext, GlobalOptions } from '../context.ts'
import { UsageError } from '../errors.ts'

interface LockOptions extends GlobalOptions {
	setExpected?: boolean
	replace?: boolean
}

export function registerIntegrityCommands(cli: CAC, ctx: CommandContext): void {
	cli
		.command('verify <name>', 'Hash every file of a model, record the hashes, and check them against its lock')
		.option('--json', 'Print JSON for scripts')
		.example((bin) => `  $ ${bin} verify qwen2.5-vl-7b-awq`)
		.action(async (name: string, options: GlobalOptions) => {
			const progress = ctx.out.hashProgress('Verifying')
			try {
				const deps = await ctx.deps(options)
				const { verifyModel } = await import('../../core/service.ts')
				const result = await verifyModel(deps, String(name), progress)
				progress.done()
				if (options.json) ctx.out.json(result)
				else ctx.out.verified(result)
			} finally {
				progress.done()
			}
		})

	cli
		.command('lock <name>', 'Lock a model: select refuses it whenever its files drift from the lock')
		.option('--set-expected', 'Fill an empty expected hash from the current files (hashes them)')
		.option('--replace', 'With --set-expected: replace an existing expected hash (accept new files)')
		.option('--json', 'Print JSON for scripts')
		.example(
			(bin) =>
				`  $ ${bin} lock qwen2.5-vl-7b-awq --set-expected\n  $ ${bin} lock qwen2.5-vl-7b-awq --set-expected --replace   # accept new files`
		)
		.action(async (name: string, options: LockOptions) => {
			if (options.replace && !options.setExpected) throw new UsageError('--replace only makes sense with --set-expected')
			const progress = ctx.out.hashProgress('Hashing')
			try {
				const deps = await ctx.deps(options)
				const { lockModel } = await import('../../core/service.ts')
				const result = await lockModel(deps, String(name), {
					setExpected: Boolean(options.setExpected),
					replace: Boolean(options.replace),
					...progress
				})
				progress.done()
				if (options.json) ctx.out.json(result)
				else ctx.out.lockResult(result)
			} finally {
				progress.done()
			}
		})

	cli
		.command('unlock <name>', 'Unlock a model; its expected hash is kept for a later re-lock')
		.option('--json', 'Print JSON for scripts')
		.example((bin) => `  $ ${bin} unlock qwen2.5-vl-7b-awq`)
		.action(async (name: string, options: GlobalOptions) => {
			const deps = await ctx.deps(options)
			const { unlockModel } = await import('../../core/service.ts')
			const result = await unlockModel(deps, String(name))
			if (options.json) ctx.out.json(result)
			else ctx.out.lockResult(result)
		})
}
