/** The binary's entry point: run the command line and exit with its code. */
import { runCli } from './cli/run.ts'
import { systemIo } from './cli/output.ts'

process.exitCode = await runCli(process.argv, systemIo())
