/** @module `verify`, `lock` and `unlock`: the version lock on a model's files. */
import type { CAC } from 'cac'
import type { CommandContext, GlobalOptions } from '../context.ts'
import { showingProgress } from '../output.ts'
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
			const deps = await ctx.deps(options)
			const { verifyModel } = await import('../../core/service.ts')
			const progress = ctx.out.hashProgress('Verifying')
			const result = await showingProgress(progress, () => verifyModel(deps, String(name), progress))
			ctx.out.emit(result, options.json, (r) => ctx.out.verified(r))
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
			const deps = await ctx.deps(options)
			const { lockModel } = await import('../../core/service.ts')
			const progress = ctx.out.hashProgress('Hashing')
			const result = await showingProgress(progress, () =>
				lockModel(deps, String(name), { setExpected: Boolean(options.setExpected), replace: Boolean(options.replace), ...progress })
			)
			ctx.out.emit(result, options.json, (r) => ctx.out.lockResult(r))
		})

	cli
		.command('unlock <name>', 'Unlock a model; its expected hash is kept for a later re-lock')
		.option('--json', 'Print JSON for scripts')
		.example((bin) => `  $ ${bin} unlock qwen2.5-vl-7b-awq`)
		.action(async (name: string, options: GlobalOptions) => {
			const deps = await ctx.deps(options)
			const { unlockModel } = await import('../../core/service.ts')
			ctx.out.emit(await unlockModel(deps, String(name)), options.json, (r) => ctx.out.lockResult(r))
		})
}
