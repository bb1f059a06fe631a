/**
 * @module
 * The one place where the CLI turns errors into exit codes: 0 success, 1 the operation failed,
 * 2 usage error (unknown option, missing argument, malformed name or capability, bad setting).
 */
import { LoaderError, RequestError } from '../core/errors.ts'

export const EXIT_OK = 0
export const EXIT_FAILED = 1
export const EXIT_USAGE = 2

/** A usage problem found by a command itself (e.g. both a name and --role). */
export class UsageError extends Error {
	override name = 'UsageError'
}

/** The exit code for an error, or undefined when it is a bug (not raised on purpose). */
export function exitCodeFor(error: unknown): number | undefined {
	if (error instanceof RequestError || error instanceof UsageError) return EXIT_USAGE
	if (error instanceof LoaderError) return EXIT_FAILED
	if (error instanceof Error && error.name === 'CACError') return EXIT_USAGE
	return undefined
}
