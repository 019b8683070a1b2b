import { z } from 'zod';
import { teamRoles } from '../../../identity/teams.ts';
import {
  accountResource,
  memberResource,
  teamResource,
  toAccountResource,
  toTeamResource,
} from '../resources.ts';
import { answers, noContent, type ApiRoutes } from '../routes.ts';

const organization = z.object({ org: z.string().max(255) });
const team = organization.extend({ team: z.string().max(255) });
const member = team.extend({ member: z.string().max(255) });

/** Organizations, their teams and the teams' members. */
export const organizationRoutes: ApiRoutes = async (app, { identity, contextOf }) => {
  app.get(
    '/organizations',
    {
      schema: {
        tags: ['organizations'],
        summary: 'Organizations you belong to (all of them for superusers)',
        response: answers({ 200: z.object({ organizations: z.array(accountResource) }) }),
      },
    },
    async (request) => ({
      organizations: (await identity.listOrganizations(request.principal)).map(toAccountResource),
    }),
  );

  app.post(
    '/organizations',
    {
      schema: {
        tags: ['organizations'],
        summary: 'Create an organization; you become a member of its "owners" admin team',
        body: z.object({ name: z.string().max(255), email: z.email().max(255).nullable().optional() }),
        response: answers({ 201: accountResource }),
      },
    },
    async (request, reply) => {
      const created = await identity.createOrganization(request.principal, request.body, contextOf(request));
      return reply.code(201).send(toAccountResource(created));
    },
  );

  app.get(
    '/organizations/:org',
    {
      schema: {
        tags: ['organizations'],
        summary: 'Read an organization (members)',
        params: organization,
        response: answers({ 200: accountResource }),
      },
    },
    async (request) =>
      toAccountResource(await identity.getOrganization(request.principal, request.params.org)),
  );

  app.delete(
    '/organizations/:org',
    {
      schema: {
        tags: ['organizations'],
        summary: 'Delete an organization (admins); refused while it has repositories',
        params: organization,
        response: answers({ 204: noContent }),
      },
    },
    async (request, reply) => {
      await identity.deleteOrganization(request.principal, request.params.org, contextOf(request));
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/organizations/:org/teams',
    {
      schema: {
        tags: ['organizations'],
        summary: "The organization's teams (members)",
        params: organization,
        response: answers({ 200: z.object({ teams: z.array(teamResource) }) }),
      },
    },
    async (request) => ({
      teams: (await identity.listTeams(request.principal, request.params.org)).map(toTeamResource),
    }),
  );

  app.put(
    '/organizations/:org/teams/:team',
    {
      schema: {
        tags: ['organizations'],
        summary: 'Create a team or change its role and description (admins)',
        params: team,
        body: z.object({
          role: z.enum(teamRoles as ['member', 'creator', 'admin']),
          description: z.string().max(500).optional(),
        }),
        response: answers({ 200: teamResource.omit({ members: true }) }),
      },
    },
    async (request) => {
      const { org, team: name } = request.params;
      const saved = await identity.putTeam(request.principal, org, name, request.body, contextOf(request));
      return { name: saved.name, role: saved.role, description: saved.description };
    },
  );

  app.delete(
    '/organizations/:org/teams/:team',
    {
      schema: {
        tags: ['organizations'],
        summary: 'Delete a team (admins); the last admin team cannot go',
        params: team,
        response: answers({ 204: noContent }),
      },
    },
    async (request, reply) => {
      const { org, team: name } = request.params;
      await identity.deleteTeam(request.principal, org, name, contextOf(request));
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/organizations/:org/teams/:team/members',
    {
      schema: {
        tags: ['organizations'],
        summary: "A team's members (members of the organization)",
        params: team,
        response: answers({ 200: z.object({ members: z.array(memberResource) }) }),
      },
    },
    async (request) => ({
      members: await identity.listTeamMembers(request.principal, request.params.org, request.params.team),
    }),
  );

  app.put(
    '/organizations/:org/teams/:team/members/:member',
    {
      schema: {
        tags: ['organizations'],
        summary: 'Add a user, or a robot of this organization, to a team (admins)',
        params: member,
        response: answers({ 204: noContent }),
      },
    },
    async (request, reply) => {
      const { org, team: name, member: account } = request.params;
      await identity.addTeamMember(request.principal, org, name, account, contextOf(request));
      return reply.code(204).send(null);
    },
  );

  app.delete(
    '/organizations/:org/teams/:team/members/:member',
    {
      schema: {
        tags: ['organizations'],
        summary: 'Remove a member from a team (admins)',
        params: member,
        response: answers({ 204: noContent }),
      },
    },
    async (request, reply) => {
      const { org, team: name, member: account } = request.params;
      await identity.removeTeamMember(request.principal, org, name, account, contextOf(request));
      return reply.code(204).send(null);
    },
  );
};
