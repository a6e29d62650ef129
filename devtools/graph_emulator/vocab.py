"""Vocabularies the tenant generator draws from.

Large enough that profiles differ and search has something to chew on; a few entries carry
accents, apostrophes or non-Latin letters on purpose, because real directories do.
"""

from __future__ import annotations

from typing import Final


def _words(text: str) -> tuple[str, ...]:
    """Whitespace-separated entries; ``_`` stands for a space inside one entry."""
    return tuple(word.replace("_", " ") for word in text.split())


def _lines(text: str) -> tuple[str, ...]:
    """One entry per non-blank line."""
    return tuple(line.strip() for line in text.strip().splitlines() if line.strip())


FIRST_NAMES: Final = _words(
    """
    Aaliyah Aaron Abigail Adam Adele Adrian Agnes Ahmed Aiko Alan Alejandro Alexandra Alice
    Amara Amelia Ana Anders Andrea Andrés Aneesh Anika Anna Antoine Arjun Astrid Ayesha Beatriz
    Benjamin Bianca Björn Bruno Camille Carlos Carmen Caroline Catalina Chen Chiara Chloé
    Christopher Claire Daniel Daniela David Deepa Diego Dmitri Elena Élodie Emily Emma Erik
    Esther Fatima Felix Fernando Fiona François Freya Gabriel Giulia Grace Hannah Hans Haruto
    Helena Hiroshi Hugo Ibrahim Ines Ingrid Isabel Ivan Jack James Jana Javier Jing Joaquín
    Johan Jonas José Julia Kai Karim Katarzyna Kenji Laila Lars Laura Leila Leon Liam Lina Lucas
    Lucía Magnus Maja Manuel Marco María Mateo Maya Mehmet Mia Michael Mohammed Nadia Naomi
    Nikolai Noah Nora Olivia Omar Oscar Paula Pedro Priya Rafael Rahul Ravi Renée Ricardo Rosa
    Ruth Samuel Sara Sebastian Siddharth Sofia Søren Stefan Sven Tariq Thomas Timo Tomás
    Valentina Victor Wei William Yara Yasmin Yuki Zainab Zoë
    """
)

SURNAMES: Final = _words(
    """
    Abbott Acosta Adams Ahmed Akhtar Almeida Andersen Anderson Bailey Baker Banerjee Barros Becker
    Bergström Bianchi Brown Byrne Campbell Carter Castillo Chen Clarke Costa Cruz Dąbrowski Da_Silva
    Davies Dubois Dupont Edwards Eriksson Evans Fernández Fischer Fitzgerald Fontaine Garcia García
    Gómez González Gray Green Gupta Hall Hansen Harris Hashemi Herrera Hoffmann Hughes Ibrahim
    Ivanova Jackson Jansen Jensen Johansson Johnson Jones Kaur Kelly Khan Kim Kowalski Krüger Kumar
    Larsen Laurent Lee Lefèvre Lewis Li Lindqvist Liu Lopez Lund Martin Martínez Meyer Miller
    Moreau Morris Müller Murphy Nakamura Nguyen Nielsen Novak Nowak O'Brien O'Connor Okafor Olsen
    Ortiz Park Patel Pereira Petrov Phillips Popescu Quinn Rahman Ramírez Reddy Rossi Russo Sato
    Schmidt Schneider Schulz Silva Singh Smith Sokolov Suzuki Svensson Tanaka Taylor Thomas Torres
    Turner Van_der_Berg Vargas Virtanen Wagner Walker Wang Watanabe Weber White Williams Wilson
    Wójcik Wright Yamamoto Yilmaz Young Zhang Zhou Zimmermann
    """
)

DEPARTMENTS: Final = _lines(
    """
    Engineering
    Sales
    Marketing
    Finance
    Human Resources
    Legal
    Operations
    Customer Success
    Product Management
    Research & Development
    IT
    Procurement
    Facilities
    Communications
    Data & Analytics
    Security
    """
)

JOB_TITLES: Final[dict[str, tuple[str, ...]]] = {
    "Engineering": (
        "Software Engineer",
        "Senior Software Engineer",
        "Principal Engineer",
        "Engineering Manager",
        "Site Reliability Engineer",
        "QA Engineer",
        "Staff Engineer",
        "DevOps Engineer",
    ),
    "Sales": (
        "Account Executive",
        "Sales Manager",
        "Sales Development Representative",
        "Regional Sales Director",
        "Inside Sales Specialist",
    ),
    "Marketing": (
        "Marketing Manager",
        "Content Strategist",
        "Brand Manager",
        "Digital Marketing Specialist",
        "Product Marketing Manager",
    ),
    "Finance": (
        "Financial Analyst",
        "Controller",
        "Accountant",
        "Treasury Manager",
        "Chief Financial Officer",
    ),
    "Human Resources": (
        "HR Business Partner",
        "Recruiter",
        "Talent Acquisition Lead",
        "Compensation Analyst",
        "People Operations Manager",
    ),
    "Legal": ("Corporate Counsel", "Paralegal", "Compliance Officer", "Contracts Manager"),
    "Operations": (
        "Operations Manager",
        "Logistics Coordinator",
        "Supply Chain Analyst",
        "Chief Operating Officer",
    ),
    "Customer Success": (
        "Customer Success Manager",
        "Support Engineer",
        "Technical Account Manager",
        "Support Team Lead",
    ),
    "Product Management": (
        "Product Manager",
        "Senior Product Manager",
        "Product Owner",
        "Director of Product",
    ),
    "Research & Development": (
        "Research Scientist",
        "Applied Scientist",
        "Lab Manager",
        "R&D Engineer",
    ),
    "IT": (
        "Systems Administrator",
        "IT Support Specialist",
        "Network Engineer",
        "IT Manager",
        "Cloud Architect",
    ),
    "Procurement": ("Buyer", "Procurement Specialist", "Vendor Manager"),
    "Facilities": ("Facilities Coordinator", "Workplace Manager", "Café Manager"),
    "Communications": (
        "Communications Manager",
        "Technical Writer",
        "Editor",
        "Public Relations Specialist",
    ),
    "Data & Analytics": (
        "Data Scientist",
        "Data Engineer",
        "BI Analyst",
        "Analytics Manager",
        "Machine Learning Engineer",
    ),
    "Security": ("Security Engineer", "Security Analyst", "CISO", "Penetration Tester"),
}

OFFICES: Final = _lines(
    """
    Redmond Building 18
    Seattle HQ 12/1105
    New York 5th Avenue
    London Paddington
    Dublin Leopardstown
    Paris Issy-les-Moulineaux
    München Schwabing
    Zürich Oerlikon
    Amsterdam Zuidas
    Stockholm Kista
    Warszawa Mokotów
    Madrid La Finca
    São Paulo Vila Olímpia
    Toronto Front Street
    Bengaluru Whitefield
    Hyderabad Gachibowli
    Singapore Marina One
    Tokyo Shinagawa
    Sydney North Ryde
    Remote
    """
)

SKILLS: Final = _lines(
    """
    Python
    C#
    Java
    TypeScript
    JavaScript
    Go
    Rust
    C++
    Kotlin
    Swift
    SQL
    PowerShell
    Bash scripting
    Azure
    AWS
    Google Cloud
    Kubernetes
    Docker
    Terraform
    Helm
    gRPC
    REST API design
    GraphQL
    Microservices
    Distributed systems
    Event sourcing
    Redis
    PostgreSQL
    SQL Server
    Cosmos DB
    MongoDB
    Kafka
    Spark
    Databricks
    Power BI
    Tableau
    Excel modelling
    Machine learning
    Deep learning
    Natural language processing
    Computer vision
    Statistics
    A/B testing
    Data visualisation
    ETL pipelines
    Data governance
    Security auditing
    Threat modelling
    Penetration testing
    Identity and access management
    Zero Trust
    Incident response
    Site reliability
    Observability
    Performance tuning
    Capacity planning
    CI/CD
    GitHub Actions
    Azure DevOps
    Release management
    Test automation
    Accessibility
    UX research
    UI design
    Figma
    Design systems
    Technical writing
    Documentation
    Public speaking
    Presentation skills
    Storytelling
    Negotiation
    Contract negotiation
    Stakeholder management
    Project management
    Programme management
    Agile coaching
    Scrum
    Kanban
    OKRs
    Product strategy
    Roadmapping
    Market research
    Competitive analysis
    Pricing strategy
    Go-to-market planning
    Brand strategy
    Content marketing
    SEO
    Social media
    Copywriting
    Email campaigns
    Event planning
    Customer onboarding
    Account management
    Solution selling
    CRM
    Dynamics 365
    Salesforce
    SharePoint
    Microsoft Teams
    Power Automate
    Power Apps
    Financial modelling
    Budgeting
    Forecasting
    IFRS
    GAAP
    Auditing
    Tax compliance
    Treasury
    Procurement
    Vendor management
    Supply chain
    Logistics
    Lean
    Six Sigma
    Quality assurance
    ISO 27001
    GDPR
    Risk management
    Compliance
    Employment law
    Recruiting
    Interviewing
    Coaching
    Mentoring
    Team leadership
    Conflict resolution
    Change management
    Facilitation
    Training delivery
    Instructional design
    Onboarding programmes
    Diversity and inclusion
    Wellbeing programmes
    Résumé writing
    Café management
    Barista training
    Facilities management
    Health and safety
    Translation
    Interpretation
    Spanish
    French
    German
    Japanese
    Mandarin
    Portuguese
    Arabic
    Hindi
    Sign language
    Photography
    Video editing
    Podcast production
    Illustration
    3D modelling
    CAD
    Embedded systems
    IoT
    Robotics
    FPGA design
    Signal processing
    Networking
    DNS
    TCP/IP
    Linux administration
    Windows Server
    Active Directory
    Entra ID
    Exchange Online
    Intune
    Endpoint management
    Help desk
    ITIL
    Service design
    Customer empathy
    Negotiation in difficult situations
    Naïve Bayes classifiers
    Crème brûlée (competition level)
    """
)

PROJECT_CODENAMES: Final = _words(
    """
    Aurora Basalt Beacon Bluebird Borealis Cadence Caldera Canopy Cascade Catalyst Cedar Cinder
    Cirrus Cobalt Comet Compass Condor Coral Cypress Delta Drift Dune Echo Eclipse Ember Equinox
    Falcon Fathom Fjord Flint Fusion Galileo Garnet Geyser Glacier Granite Halcyon Harbor Helix
    Horizon Hyperion Ibis Indigo Iris Jade Juniper Kestrel Keystone Krypton Lagoon Lantern Lattice
    Lumen Lynx Magnolia Mariner Meridian Mesa Monsoon Mosaic Nebula Nimbus Nova Obsidian Onyx Orbit
    Orchid Osprey Pacific Paragon Pegasus Phoenix Pinnacle Polaris Prism Quartz Quasar Radiant
    Redwood Ridge Sable Saffron Sapphire Sequoia Sierra Solstice Sparrow Spectre Summit Tempest
    Tundra Vanguard Vector Velvet Vertex Voyager Willow Zenith Zephyr Ångström Café_Nero Élan
    """
)

PROJECT_SUFFIXES: Final = _lines(
    """
    migration
    rollout
    redesign
    pilot
    v2
    platform
    integration
    launch
    modernisation
    analytics
    """
)

SCHOOLS: Final = _lines(
    """
    University of Washington
    Stanford University
    Massachusetts Institute of Technology
    Carnegie Mellon University
    University of California, Berkeley
    Georgia Institute of Technology
    University of Texas at Austin
    University of Michigan
    Cornell University
    Princeton University
    Harvard University
    Columbia University
    New York University
    University of Toronto
    University of Waterloo
    McGill University
    University of British Columbia
    University of Oxford
    University of Cambridge
    Imperial College London
    University College London
    London School of Economics
    University of Edinburgh
    University of Manchester
    Trinity College Dublin
    University College Dublin
    ETH Zürich
    EPFL
    Technische Universität München
    Ludwig-Maximilians-Universität München
    Humboldt-Universität zu Berlin
    RWTH Aachen University
    Sorbonne Université
    École Polytechnique
    Sciences Po
    HEC Paris
    Université de Montréal
    KTH Royal Institute of Technology
    Lund University
    University of Copenhagen
    University of Helsinki
    Aalto University
    Delft University of Technology
    University of Amsterdam
    KU Leuven
    Universidad de Buenos Aires
    Universidade de São Paulo
    Universidad Nacional Autónoma de México
    Pontificia Universidad Católica de Chile
    Universidad Complutense de Madrid
    Universitat de Barcelona
    Politecnico di Milano
    Sapienza Università di Roma
    Università di Bologna
    Uniwersytet Warszawski
    Charles University
    University of Vienna
    Indian Institute of Technology Bombay
    Indian Institute of Technology Delhi
    Indian Institute of Science
    National University of Singapore
    Nanyang Technological University
    University of Tokyo
    Kyoto University
    Seoul National University
    KAIST
    Tsinghua University
    Peking University
    University of Hong Kong
    University of Melbourne
    University of Sydney
    Australian National University
    University of Auckland
    University of Cape Town
    University of Lagos
    American University in Cairo
    Technion - Israel Institute of Technology
    Boğaziçi University
    Open University
    Bellevue College
    """
)

INTERESTS: Final = _lines(
    """
    Hiking
    Trail running
    Cycling
    Mountain biking
    Sailing
    Kayaking
    Surfing
    Skiing
    Snowboarding
    Rock climbing
    Bouldering
    Yoga
    Pilates
    Swimming
    Triathlon
    Marathon running
    Tennis
    Padel
    Badminton
    Table tennis
    Football
    Basketball
    Cricket
    Rugby
    Golf
    Chess
    Go (board game)
    Board games
    Tabletop RPGs
    Video games
    Speedrunning
    Reading
    Science fiction
    Poetry
    Creative writing
    Journaling
    Photography
    Birdwatching
    Astronomy
    Gardening
    Beekeeping
    Baking
    Sourdough
    Cooking
    Fermentation
    Coffee roasting
    Wine tasting
    Craft beer
    Tea ceremonies
    Travel
    Languages
    Genealogy
    History
    Museums
    Theatre
    Opera
    Jazz
    Classical music
    Piano
    Guitar
    Violin
    Drumming
    Choir singing
    Salsa dancing
    Tango
    Knitting
    Woodworking
    Pottery
    Painting
    Calligraphy
    Origami
    3D printing
    Electronics
    Amateur radio
    Home automation
    Volunteering
    Mentoring students
    Dog training
    Fishing
    Camping
    Foraging
    Café hopping
    Pétanque
    Smørrebrød making
    """
)

RESPONSIBILITIES: Final = _lines(
    """
    On-call rotation
    Code reviews
    Hiring panel
    Quarterly planning
    Budget owner
    Vendor relationships
    Security champion
    Accessibility champion
    Release coordination
    Incident commander
    Customer escalations
    Partner enablement
    Sales forecasting
    Pipeline reviews
    Brand guidelines
    Internal communications
    Newsletter editor
    Onboarding buddy
    Mentoring programme
    Diversity council
    Sustainability working group
    Health and safety officer
    Fire warden
    First aider
    Office move coordination
    Architecture review board
    Data protection officer
    Compliance attestations
    Audit liaison
    Licence management
    Asset inventory
    Knowledge base owner
    Documentation standards
    API governance
    Cost optimisation
    Capacity reviews
    Service level reporting
    Training curriculum
    Graduate programme
    Intern supervision
    Team offsites
    Performance calibration
    Succession planning
    Works council liaison
    Café supplier contracts
    Expense approvals
    Travel approvals
    Procurement sign-off
    Board reporting
    Investor relations
    """
)

ABOUT_ME_OPENERS: Final = _lines(
    """
    I joined {company} {years} years ago and have worked in {department} ever since.
    {department} person at heart; before {company} I spent a few years in consulting.
    Based in {office}, happy to help with anything {skill}-related.
    I look after {skill} questions for the {department} team.
    Ask me about {skill}, {interest}, or the best coffee near {office}.
    Currently focused on {project}; previously on {project2}.
    Part-time {interest} enthusiast, full-time {title}.
    Hi! I'm the {title} on the {department} team.
    """
)

ABOUT_ME_CLOSERS: Final = _lines(
    """
    Outside work you'll find me {interest_lower}.
    Feel free to book time on my calendar.
    I reply fastest on Teams.
    Pronouns: she/her.
    Pronouns: he/him.
    Pronouns: they/them.
    Working hours: 08:00-16:00 CET.
    Mentoring slots open every other Friday.
    Je parle aussi français.
    Hablo español también.
    """
)
