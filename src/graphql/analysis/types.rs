//! The schema's types as the analysis walks them: for each object type its
//! fields (return type, arguments), for each input type its fields, and
//! how many values each enum has. Read from the exported SDL once, at
//! start-up, so it is exactly the schema clients see.

use std::collections::HashMap;

use async_graphql::parser::{
    parse_schema,
    types::{BaseType, Type, TypeKind, TypeSystemDefinition},
};

use super::catalog::{self, FieldRule};

/// A type reference reduced to what the walk needs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum TypeRef {
    Named(String),
    List(Box<TypeRef>),
}

impl TypeRef {
    fn of(ty: &Type) -> Self {
        match &ty.base {
            BaseType::Named(name) => Self::Named(name.to_string()),
            BaseType::List(inner) => Self::List(Box::new(Self::of(inner))),
        }
    }

    /// The named type at the bottom of any lists.
    pub fn named(&self) -> &str {
        match self {
            Self::Named(name) => name,
            Self::List(inner) => inner.named(),
        }
    }
}

/// One field of an object type.
#[derive(Debug, Clone)]
pub struct FieldInfo {
    pub ty: TypeRef,
    pub args: HashMap<String, TypeRef>,
    /// `None` when the catalog does not declare it (a test prevents that).
    pub rule: Option<FieldRule>,
}

/// What the analysis knows of the schema.
#[derive(Debug, Default)]
pub struct TypeTable {
    pub objects: HashMap<String, HashMap<String, FieldInfo>>,
    pub inputs: HashMap<String, HashMap<String, TypeRef>>,
    /// Each enum's values.
    pub enums: HashMap<String, Vec<String>>,
    pub query: String,
    pub mutation: Option<String>,
    pub subscription: Option<String>,
}

impl TypeTable {
    /// Reads the SDL that `async-graphql` exports for the schema.
    pub fn from_sdl(sdl: &str) -> anyhow::Result<Self> {
        let doc = parse_schema(sdl)?;
        let mut table = TypeTable {
            query: "Query".to_owned(),
            mutation: Some("Mutation".to_owned()),
            ..Default::default()
        };
        for definition in doc.definitions {
            match definition {
                TypeSystemDefinition::Schema(schema) => {
                    let schema = schema.node;
                    if let Some(q) = schema.query {
                        table.query = q.node.to_string();
                    }
                    table.mutation = schema.mutation.map(|m| m.node.to_string());
                    table.subscription = schema.subscription.map(|s| s.node.to_string());
                }
                TypeSystemDefinition::Type(ty) => {
                    let ty = ty.node;
                    let name = ty.name.node.to_string();
                    match ty.kind {
                        TypeKind::Object(object) => {
                            let fields = object
                                .fields
                                .into_iter()
                                .map(|f| {
                                    let f = f.node;
                                    let field = f.name.node.to_string();
                                    let info = FieldInfo {
                                        ty: TypeRef::of(&f.ty.node),
                                        args: f
                                            .arguments
                                            .into_iter()
                                            .map(|a| {
                                                (
                                                    a.node.name.node.to_string(),
                                                    TypeRef::of(&a.node.ty.node),
                                                )
                                            })
                                            .collect(),
                                        rule: catalog::field_rule(&name, &field),
                                    };
                                    (field, info)
                                })
                                .collect();
                            table.objects.insert(name, fields);
                        }
                        TypeKind::InputObject(input) => {
                            let fields = input
                                .fields
                                .into_iter()
                                .map(|f| {
                                    (f.node.name.node.to_string(), TypeRef::of(&f.node.ty.node))
                                })
                                .collect();
                            table.inputs.insert(name, fields);
                        }
                        TypeKind::Enum(e) => {
                            let values = e
                                .values
                                .iter()
                                .map(|v| v.node.value.node.to_string())
                                .collect();
                            table.enums.insert(name, values);
                        }
                        _ => {}
                    }
                }
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        Ok(table)
    }

    pub fn field(&self, type_name: &str, field: &str) -> Option<&FieldInfo> {
        self.objects.get(type_name)?.get(field)
    }

    /// The root type of an operation type.
    pub fn root(&self, ty: async_graphql::parser::types::OperationType) -> Option<&str> {
        use async_graphql::parser::types::OperationType as Op;
        match ty {
            Op::Query => Some(&self.query),
            Op::Mutation => self.mutation.as_deref(),
            Op::Subscription => self.subscription.as_deref(),
        }
    }

    /// Object fields the catalog does not declare, and declarations that
    /// name no field of the schema: both must be empty.
    pub fn undeclared(&self) -> (Vec<String>, Vec<String>) {
        let mut missing: Vec<String> = self
            .objects
            .iter()
            .flat_map(|(ty, fields)| {
                fields
                    .iter()
                    .filter(|(_, f)| f.rule.is_none())
                    .map(move |(name, _)| format!("{ty}.{name}"))
            })
            .collect();
        missing.sort();
        let mut stale: Vec<String> = catalog::declared()
            .into_iter()
            .filter(|(ty, field)| self.field(ty, field).is_none())
            .map(|(ty, field)| format!("{ty}.{field}"))
            .collect();
        stale.sort();
        (missing, stale)
    }
}
