/**
 * Docker Hub's implicit namespace: `nginx` is `library/nginx` there, while a name with a `/` is taken
 * as it is. For routing, which knows when an upstream is Docker Hub; the client sends names unchanged.
 */
export function dockerHubRepository(name: string): string {
  return name.includes('/') ? name : `library/${name}`;
}
