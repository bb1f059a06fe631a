/**
 * The binary's entry point: run the command line and exit with its code, or, given the hidden
 * `__hash-child` argument, serve as a hashing child process (see core/hash-child.ts).
 */
import { HASH_CHILD_ARG } from './core/hash-child-arg.ts'

if (process.argv[2] === HASH_CHILD_ARG) {
	const { runHashChild } = await import('./core/hash-child.ts')
	await runHashChild()
} else {
	const [{ runCli }, { systemIo }] = await Promise.all([import('./cli/run.ts'), import('./cli/output.ts')])
	process.exitCode = await runCli(process.argv, systemIo())
}
