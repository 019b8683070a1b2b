export * from './executor.ts';
export { BuildahExecutor, type BuildahExecutorOptions } from './buildah.ts';
export { DockerApiExecutor, type DockerApiExecutorOptions } from './docker-api.ts';
export { revisionLabel, sourceLabel } from './request.ts';
