/**
 * Debian packages a test needs (buildah, chromium): installed by the test set-up when missing, since a
 * fresh machine has apt but not them. Returns why not when they cannot be installed, for a clear skip.
 */
import { existsSync } from 'node:fs'

/**
 * Make `command` available, installing `pkg` with apt-get if needed (as root, with the network).
 * @returns undefined when it is there, or the reason it is not
 */
export function ensureDebianPackage(command: string, pkg: string): string | undefined {
	const present = () => (command.startsWith('/') ? existsSync(command) : Bun.which(command) !== null)
	if (present()) return undefined
	if (!Bun.which('apt-get')) return `${command} is missing and this machine has no apt-get to install ${pkg}`
	if (process.getuid?.() !== 0) return `${command} is missing and installing ${pkg} needs root`
	const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
	const install = () => Bun.spawnSync(['apt-get', 'install', '-y', '--no-install-recommends', pkg], { env, stdout: 'pipe', stderr: 'pipe' })
	let result = install()
	if (result.exitCode !== 0) {
		Bun.spawnSync(['apt-get', 'update'], { env, stdout: 'pipe', stderr: 'pipe' })
		result = install()
	}
	if (present()) return undefined
	return `apt-get install ${pkg} failed: ${result.stderr.toString().trim().split('\n').slice(-3).join(' ')}`
}
