/**
 * @module
 * The `imageworks-loader` command line: cac, thin over `core/service.ts`. `runCli` returns an exit code
 * and never calls `process.exit`, so tests can run it in-process.
 */
import { cac } from 'cac'
import { LoaderError } from '../core/errors.ts'
import { similarity } from '../core/similarity.ts'
import { COMMIT, VERSION } from '../version.ts'
import { registerIntegrityCommands } from './commands/integrity.ts'
import { registerModelCommands } from './commands/models.ts'
import { registerObserveCommands } from './commands/observe.ts'
import { registerServeCommand } from './commands/serve.ts'
import { CommandContext } from './context.ts'
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, exitCodeFor } from './errors.ts'
import type { Io } from './output.ts'

/** Run the command line `argv` (as `process.argv`: runtime, script, then arguments). */
export async function runCli(argv: string[], io: Io): Promise<number> {
	const ctx = new CommandContext(io)
	const cli = cac('imageworks-loader')
	cli.option('--registry <path>', 'Registry JSON file (default: IMAGEWORKS_REGISTRY or configs/model_registry.json)')
	registerModelCommands(cli, ctx)
	registerIntegrityCommands(cli, ctx)
	let exitCode = EXIT_OK
	registerObserveCommands(cli, ctx, (code) => {
		exitCode = code
	})
	registerServeCommand(cli, ctx, (code) => {
		exitCode = code
	})
	cli.help()
	cli.version(`${VERSION} (commit ${COMMIT})`)

	// cac prints help and version with console.info; route them to our stdout.
	const info = console.info
	console.info = (...args: unknown[]) => io.stdout(args.join(' ') + '\n')
	let unknownCommand: string | undefined
	cli.addEventListener('command:*', () => {
		unknownCommand = String(cli.args[0])
	})
	try {
		cli.parse(argv, { run: false })
		if (unknownCommand !== undefined) {
			const known = cli.commands.map((c) => c.name).filter(Boolean)
			const close = known.filter((name) => similarity(name, unknownCommand as string) >= 0.6)
			const hint = close.length ? `; did you mean ${close.map((c) => JSON.stringify(c)).join(' or ')}?` : ''
			ctx.out.error(`unknown command ${JSON.stringify(unknownCommand)}${hint}`)
			printHelpTo(cli, io.stderr)
			return EXIT_USAGE
		}
		if (!cli.matchedCommand) {
			if (!cli.options['help'] && !cli.options['version']) printHelpTo(cli, io.stderr)
			return cli.options['help'] || cli.options['version'] ? EXIT_OK : EXIT_USAGE
		}
		await cli.runMatchedCommand()
		return exitCode
	} catch (error) {
		const code = exitCodeFor(error)
		if (code === undefined) {
			ctx.out.error(`unexpected failure: ${error instanceof Error ? error.message : String(error)}`)
			return EXIT_FAILED
		}
		ctx.out.error((error as Error).message)
		// Malformed names or settings are explained by their message; option and argument mistakes get the help.
		if (code === EXIT_USAGE && !(error instanceof LoaderError)) {
			printHelpTo(cli, io.stderr)
		}
		return code
	} finally {
		console.info = info
	}
}

function printHelpTo(cli: ReturnType<typeof cac>, write: (text: string) => void): void {
	const info = console.info
	console.info = (...args: unknown[]) => write(args.join(' ') + '\n')
	try {
		cli.outputHelp()
	} finally {
		console.info = info
	}
}
