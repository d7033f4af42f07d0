/**
 * Before `npm test` runs anything: the system tools its suites use, by name. Without this, a machine lacking
 * `just` or `dockerd` failed a dozen tests with `-1 !== 0` far from the cause. `bash .ci/run` installs them all
 * (Debian/Ubuntu, as root); `npm run test:unit` needs none of them.
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

interface Tool {
  /** The command, looked up on PATH, or an absolute path. */
  command: string;
  /** Debian's package that provides it. */
  debian: string;
  why: string;
}

export const TEST_TOOLS: readonly Tool[] = [
  { command: 'just', debian: 'just (or the npm package rust-just-linux-x64)', why: 'the deploy recipes' },
  { command: 'dockerd', debian: 'docker.io', why: 'the image and deploy tests run a real Docker engine' },
  { command: 'docker', debian: 'docker.io', why: 'the Docker CLI' },
  { command: 'docker-registry', debian: 'docker-registry', why: 'the push and spot-check tests use a real registry' },
  { command: '/usr/sbin/sshd', debian: 'openssh-server', why: 'the deploy tests reach their Docker engine over a loopback sshd' },
  { command: 'ssh', debian: 'openssh-client', why: "Docker's ssh transport (DOCKER_HOST=ssh://...) runs it" },
  { command: 'mmdebstrap', debian: 'mmdebstrap', why: "the image tests' local Debian base" },
  { command: 'ffmpeg', debian: 'ffmpeg', why: 'clips are rendered and decoded with Debian ffmpeg 5.1' },
  { command: '/usr/bin/time', debian: 'time', why: "ffmpeg's peak memory in the hostile-media test" },
  { command: 'prlimit', debian: 'util-linux', why: "ffmpeg's address-space limit" },
];

function found(command: string, searchPath: string): boolean {
  const candidates = command.includes('/') ? [command] : searchPath.split(path.delimiter).map((dir) => path.join(dir, command));
  return candidates.some((candidate) => {
    try {
      accessSync(candidate, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The tools missing on `searchPath`. */
export function missingTools(searchPath = process.env.PATH ?? '', tools: readonly Tool[] = TEST_TOOLS): Tool[] {
  return tools.filter((tool) => !found(tool.command, searchPath));
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const missing = missingTools();
  if (missing.length > 0) {
    for (const tool of missing) console.error(`error: ${tool.command} is not installed (Debian: ${tool.debian}): ${tool.why}`);
    console.error('  next: bash .ci/run installs every one and runs the tests (Debian/Ubuntu, as root); npm run test:unit needs none');
    process.exit(1);
  }
}
