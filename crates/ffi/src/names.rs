//! The reasons and dimensions of decisions, between the engine's enums and the C ones, and their names
//! as `POST /v1/check` writes them (static C strings: printing a decision allocates nothing).

use std::ffi::{CStr, c_char};

use consentry_core::{Dimension as CoreDimension, Reason as CoreReason};

use crate::{Dimension, Reason};

pub(crate) fn reason(r: CoreReason) -> Reason {
    match r {
        CoreReason::Granted => Reason::Granted,
        CoreReason::BasisContract => Reason::BasisContract,
        CoreReason::BasisLegitimateInterest => Reason::BasisLegitimateInterest,
        CoreReason::BasisLegalObligation => Reason::BasisLegalObligation,
        CoreReason::BasisVitalInterest => Reason::BasisVitalInterest,
        CoreReason::BasisPublicTask => Reason::BasisPublicTask,
        CoreReason::NoConsent => Reason::NoConsent,
        CoreReason::Withdrawn => Reason::Withdrawn,
        CoreReason::Denied => Reason::Denied,
        CoreReason::Expired => Reason::Expired,
        CoreReason::Objected => Reason::Objected,
        CoreReason::Restricted => Reason::Restricted,
        CoreReason::NotCovered => Reason::NotCovered,
        CoreReason::GpcOptOut => Reason::GpcOptOut,
        CoreReason::Erased => Reason::Erased,
        CoreReason::NotOptedOut => Reason::NotOptedOut,
        CoreReason::GuardianRequired => Reason::GuardianRequired,
        CoreReason::ChildProtected => Reason::ChildProtected,
    }
}

pub(crate) fn dimension(d: Option<CoreDimension>) -> Dimension {
    match d {
        None => Dimension::None,
        Some(CoreDimension::Category) => Dimension::Category,
        Some(CoreDimension::Channel) => Dimension::Channel,
        Some(CoreDimension::Recipient) => Dimension::Recipient,
        Some(CoreDimension::Purpose) => Dimension::Purpose,
    }
}

fn reason_cstr(r: Reason) -> &'static CStr {
    match r {
        Reason::Granted => c"granted",
        Reason::BasisContract => c"basis_contract",
        Reason::BasisLegitimateInterest => c"basis_legitimate_interest",
        Reason::BasisLegalObligation => c"basis_legal_obligation",
        Reason::BasisVitalInterest => c"basis_vital_interest",
        Reason::BasisPublicTask => c"basis_public_task",
        Reason::NoConsent => c"no_consent",
        Reason::Withdrawn => c"withdrawn",
        Reason::Denied => c"denied",
        Reason::Expired => c"expired",
        Reason::Objected => c"objected",
        Reason::Restricted => c"restricted",
        Reason::NotCovered => c"not_covered",
        Reason::GpcOptOut => c"gpc_opt_out",
        Reason::Erased => c"erased",
        Reason::NotOptedOut => c"not_opted_out",
        Reason::GuardianRequired => c"guardian_required",
        Reason::ChildProtected => c"child_protected",
    }
}

fn dimension_cstr(d: Dimension) -> &'static CStr {
    match d {
        Dimension::None => c"",
        Dimension::Category => c"category",
        Dimension::Channel => c"channel",
        Dimension::Recipient => c"recipient",
        Dimension::Purpose => c"purpose",
    }
}

/// The reason's name as `POST /v1/check` writes it (`granted`, `withdrawn`, ...); a static string.
#[unsafe(no_mangle)]
pub extern "C" fn consentry_reason_name(reason: Reason) -> *const c_char {
    reason_cstr(reason).as_ptr()
}

/// The dimension's name as `POST /v1/check` writes `not_covered` (`category`, ...; "" for none); a static
/// string.
#[unsafe(no_mangle)]
pub extern "C" fn consentry_dimension_name(dimension: Dimension) -> *const c_char {
    dimension_cstr(dimension).as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_engines() {
        for r in CoreReason::ALL {
            assert_eq!(reason_cstr(reason(r)).to_str(), Ok(r.as_str()), "{r:?}");
        }
        for d in [
            CoreDimension::Category,
            CoreDimension::Channel,
            CoreDimension::Recipient,
            CoreDimension::Purpose,
        ] {
            assert_eq!(dimension_cstr(dimension(Some(d))).to_str(), Ok(d.as_str()), "{d:?}");
        }
        assert_eq!(dimension_cstr(dimension(None)).to_str(), Ok(""));
    }
}
