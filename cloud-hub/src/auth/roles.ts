/**
 * Roles of the people who use the hub (issue 6, REQUIREMENTS "People who use it").
 * A user belongs to one agency; a grant gives a role, and reviewers get one review
 * category per grant (001 Art. 45 joint review: police for video, city management for
 * urban-operations sensing, emergency management for hazard monitoring).
 */

/** Every role a user can be granted. */
export const ROLES = [
  'platform-admin',
  'agency-operator',
  'reviewer',
  'algorithm-admin',
  'field-engineer',
] as const;

/** A role: `platform-admin` (big-data bureau), `agency-operator`, `reviewer`, `algorithm-admin`, `field-engineer`. */
export type Role = (typeof ROLES)[number];

/** Joint-review categories a reviewer grant is limited to. */
export const REVIEW_CATEGORIES = ['video', 'urban-operations', 'hazard-monitoring'] as const;

/** One joint-review category. */
export type ReviewCategory = (typeof REVIEW_CATEGORIES)[number];

/** Agency kinds: a district government, a bureau, or the platform (big-data bureau). */
export const AGENCY_KINDS = ['district', 'bureau', 'platform'] as const;

/** One agency kind. */
export type AgencyKind = (typeof AGENCY_KINDS)[number];

/** One role held by a user; `category` is set for reviewers only. */
export interface RoleGrant {
  role: Role;
  category?: ReviewCategory;
}

/** What a role is needed for: an agency's data, a review category. */
export interface AccessScope {
  /** The agency the target belongs to; agency-bound roles must be of this agency. */
  agencyId?: string | undefined;
  /** The review category of the target; reviewer grants must be of this category. */
  category?: ReviewCategory | undefined;
}

/** Someone whose grants are checked: a user's agency and roles. */
export interface GrantHolder {
  agencyId: string;
  roles: readonly RoleGrant[];
}

/**
 * Whether `who` holds one of `roles` for `scope`. `platform-admin` is city-wide:
 * it matches any agency. Every other role matches only targets of the holder's own
 * agency when `scope.agencyId` is given; a reviewer grant matches only its category
 * when `scope.category` is given.
 */
export function holdsRole(who: GrantHolder, roles: Role | readonly Role[], scope: AccessScope = {}): boolean {
  const wanted: readonly Role[] = typeof roles === 'string' ? [roles] : roles;
  return who.roles.some((grant) => {
    if (!wanted.includes(grant.role)) return false;
    if (grant.role === 'platform-admin') return true;
    if (scope.agencyId !== undefined && scope.agencyId !== who.agencyId) return false;
    if (grant.role === 'reviewer' && scope.category !== undefined && grant.category !== scope.category)
      return false;
    return true;
  });
}

/** `reviewer:video`, `field-engineer`: a grant as one word (CLI, logs). */
export function grantLabel(grant: RoleGrant): string {
  return grant.category ? `${grant.role}:${grant.category}` : grant.role;
}
