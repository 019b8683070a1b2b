import type { Build } from './build-store.ts';
import type { BuildFailedError } from './executors/index.ts';

/** A build step as buildah and Podman (`STEP 1/3: FROM …`) or Docker (`Step 1/3 : FROM …`) announce it. */
const step = /^step \d+\/\d+ ?: (.*)$/i;
const fromStep = /^FROM\s+(?:--platform=\S+\s+)?(\S+)/i;
const refused = /\b(?:denied|unauthorized)\b/i;

/**
 * What to do when a build failed pulling a private FROM image of this Slipway, or null when it did not.
 * The registry's refusal is all buildah and the engines print, so the failing step is recognized by
 * what every executor does print: its last step announced is a FROM of an image on `registry`, and a
 * line after that says denied or unauthorized.
 */
export function pullDeniedHint(
  error: BuildFailedError,
  registry: string,
  build: Pick<Build, 'repository' | 'triggerId'>,
): string | null {
  if (error.phase !== 'build') return null;
  const lines = error.outputTail.join('\n').split('\n');
  const stepAt = lines.findLastIndex((line) => step.test(line));
  const image = fromStep.exec(step.exec(lines[stepAt] ?? '')?.[1] ?? '')?.[1];
  if (!image?.toLowerCase().startsWith(`${registry.toLowerCase()}/`)) return null;
  const repository = image
    .slice(registry.length + 1)
    .replace(/@.*$/, '')
    .replace(/:[^/]*$/, '');
  if (repository === build.repository || !lines.slice(stepAt + 1).some((line) => refused.test(line)))
    return null;
  const remedy = build.triggerId
    ? `give the trigger a pull robot that can read it (slipway trigger pull-robot ${build.triggerId} NS+NAME)`
    : 'start the build with a pull robot that can read it (slipway build start --pull-robot NS+NAME)';
  return (
    'the build may pull only its own repository, public ones and open pull-through caches: ' +
    `to use the private image ${repository}, ${remedy}`
  );
}
